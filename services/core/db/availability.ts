import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { DatabaseAwayError, isDatabaseUnavailable } from './errors';

export interface DatabaseAvailabilityOptions {
  /** Asks PostgreSQL whether it answers (SELECT 1 within a short deadline); rejects when it does not. */
  probe: () => Promise<void>;
  log: Logger;
  metrics?: Metrics;
  /** Between probes while PostgreSQL is away. Default 1 s. */
  probeEveryMs?: number;
}

/**
 * Whether a request should ask PostgreSQL at all. While it answers, every request does.
 * Once a request ends because it is away or stopped answering (down, restarting, hung,
 * partitioned), the requests that need it are refused at once (503 with Retry-After) and
 * a probe asks it again, a second after each unanswered one, until it answers. Without
 * this, a hung server held every request for the whole wait (5 s) and the pool's queue of
 * waiting requests grew with the offered load; with it, only the requests already waiting
 * pay that wait.
 */
export class DatabaseAvailability {
  private away = false;
  private closed = false;
  private probeTimer: NodeJS.Timeout | undefined;
  private readonly probeEveryMs: number;

  constructor(private readonly options: DatabaseAvailabilityOptions) {
    this.probeEveryMs = options.probeEveryMs ?? 1_000;
    options.metrics?.postgresAvailable.set(1);
  }

  get available(): boolean {
    return !this.away;
  }

  /** Throws DatabaseAwayError while PostgreSQL is away (the problem handler answers it 503). */
  assertAvailable(): void {
    if (this.away) throw new DatabaseAwayError();
  }

  /** Every error a request ended with: one that says PostgreSQL is away stops the next requests from asking it. */
  observe(error: unknown): void {
    if (this.away || this.closed || error instanceof DatabaseAwayError || !isDatabaseUnavailable(error)) return;
    this.away = true;
    this.options.metrics?.postgresAvailable.set(0);
    this.options.log.warn({ err: error }, 'PostgreSQL is away: requests that need it are answered 503 until it answers a probe');
    // At once: a lone dropped connection (a backend terminated) should cost a round trip, not a second.
    this.scheduleProbe(0);
  }

  /** PostgreSQL answered (a probe, or the readiness check): requests ask it again. */
  answered(): void {
    if (!this.away) return;
    this.away = false;
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    this.options.metrics?.postgresAvailable.set(1);
    this.options.log.info('PostgreSQL answers again: requests are sent to it');
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
  }

  private scheduleProbe(delayMs: number): void {
    this.probeTimer = setTimeout(() => void this.probe(), delayMs);
    this.probeTimer.unref();
  }

  private async probe(): Promise<void> {
    try {
      await this.options.probe();
      this.answered();
    } catch {
      if (this.away && !this.closed) this.scheduleProbe(this.probeEveryMs);
    }
  }
}
