import type { Logger } from '../../logger';
import { OutageLog } from '../../outage-log';
import type { Sweep } from './sweep';

/** Runs the sweep on a timer. While Redis or PostgreSQL is away every sweep fails: an OutageLog says so. */
export class Sweeper {
  private timer: NodeJS.Timeout | undefined;
  private readonly failures: OutageLog;

  constructor(
    private readonly sweep: Sweep,
    log: Logger,
  ) {
    this.failures = new OutageLog(log, {
      firstFailure: 'relay sweep failed (further failures are counted until a sweep succeeds)',
      laterFailure: 'relay sweep failed',
      recovered: 'relay sweep succeeds again',
      countField: 'failedSweeps',
    });
  }

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
          if (report.ran) this.failures.succeeded();
        },
        (error: unknown) => this.failures.failed(error),
      );
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
