import type { Logger } from '../../logger';
import type { Sweep } from './sweep';

/**
 * Runs the sweep on a timer. While Redis or PostgreSQL is away every sweep fails: the first
 * failure is a warning, the rest are counted, and the first success says how many failed,
 * so an outage costs the log two lines, not one per interval.
 */
export class Sweeper {
  private timer: NodeJS.Timeout | undefined;
  /** Periodic sweeps that failed since the last that succeeded. */
  private failedSweeps = 0;

  constructor(
    private readonly sweep: Sweep,
    private readonly log: Logger,
  ) {}

  start(intervalMs: number): void {
    if (this.timer) return;
    this.sweep.intervalMs = intervalMs;
    this.timer = setInterval(() => {
      // A sweep still waiting on a slow or hung Redis belongs to the tick that started it:
      // a tick that joined it would log its failure once more.
      if (this.sweep.running) return;
      this.sweep.run().then(
        (report) => {
          // A sweep that found the lock held (another process sweeping, perhaps waiting on the
          // same hung Redis) did not run: it says nothing of Redis either way.
          if (!report.ran || this.failedSweeps === 0) return;
          this.log.info({ failedSweeps: this.failedSweeps }, 'relay sweep succeeds again');
          this.failedSweeps = 0;
        },
        (error: unknown) => {
          if (this.failedSweeps === 0) this.log.warn({ err: error }, 'relay sweep failed (further failures are counted until a sweep succeeds)');
          else this.log.debug({ err: error }, 'relay sweep failed');
          this.failedSweeps += 1;
        },
      );
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
