import type { LockLapseRow } from '../core/db/jobs';
import type { Logger } from '../core/logger';
import { OutageLog } from '../core/outage-log';

export interface LockLapseLedgerOptions {
  /** Adds these lapses to their jobs' rows (recordLockLapses). */
  write: (lapses: readonly LockLapseRow[]) => Promise<void>;
  /** The lapses a job's row holds for the entry added at `entryAddedAt` (readLockLapses). */
  read: (jobId: string, entryAddedAt: number) => Promise<number>;
  log: Logger;
  /** Lapses kept unwritten at most; past it the oldest are dropped and count as crashes. */
  maxUnwritten?: number;
  /** First wait before writing kept lapses again; it doubles up to `maxRetryMs`. */
  firstRetryMs?: number;
  maxRetryMs?: number;
}

const DEFAULT_MAX_UNWRITTEN = 10_000;
const DEFAULT_FIRST_RETRY_MS = 500;
/** Short, so the kept lapses are written before the relay's sweep, which cannot see them, settles a job BullMQ gave up on. */
const DEFAULT_MAX_RETRY_MS = 4_000;

/**
 * The lock lapses of one worker, on their way to the jobs' rows. Redis letting a lock lapse
 * and PostgreSQL being away often go together (a partitioned node, a host that stood still),
 * so a lapse that cannot be written is kept and written when PostgreSQL answers again;
 * until then this worker's own crash loop count reads it from here. Writes and reads take
 * turns, so a lapse is counted either on its row or here, never on both.
 */
export class LockLapseLedger {
  private unwritten: LockLapseRow[] = [];
  private turn: Promise<unknown> = Promise.resolve();
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs: number;
  private readonly maxUnwritten: number;
  private readonly firstRetryMs: number;
  private readonly maxRetryMs: number;
  private dropped = 0;
  private readonly writeFailures: OutageLog;
  private closed = false;

  constructor(private readonly options: LockLapseLedgerOptions) {
    this.maxUnwritten = options.maxUnwritten ?? DEFAULT_MAX_UNWRITTEN;
    this.firstRetryMs = options.firstRetryMs ?? DEFAULT_FIRST_RETRY_MS;
    this.maxRetryMs = options.maxRetryMs ?? DEFAULT_MAX_RETRY_MS;
    this.retryMs = this.firstRetryMs;
    this.writeFailures = new OutageLog(options.log, {
      firstFailure: 'could not record the lock lapses of runs stopped while Redis was away: kept to be written when PostgreSQL answers',
      laterFailure: 'still could not record the kept lock lapses',
      recovered: 'recorded the lock lapses kept while PostgreSQL was away',
      countField: 'failedWrites',
    });
  }

  /** Lapses kept because PostgreSQL did not take them yet. */
  get unwrittenCount(): number {
    return this.unwritten.length;
  }

  /** Records lapses: written at once when PostgreSQL answers, else kept and written later. */
  record(lapses: readonly LockLapseRow[]): Promise<void> {
    return this.inTurn(async () => {
      this.keep(lapses);
      await this.writeKept();
    });
  }

  /**
   * The lapses of a job's run from the entry added at `entryAddedAt`: those on its row and
   * those kept here. When the row cannot be read, those kept here are the lapses known; with
   * none kept, the read's error is thrown.
   */
  lapsesOf(jobId: string, entryAddedAt: number): Promise<number> {
    return this.inTurn(async () => {
      await this.writeKept();
      const kept = this.unwritten.filter((lapse) => lapse.jobId === jobId && lapse.entryAddedAt === entryAddedAt).length;
      try {
        return (await this.options.read(jobId, entryAddedAt)) + kept;
      } catch (error) {
        if (kept === 0) throw error;
        this.options.log.warn({ err: error, jobId, lapses: kept }, 'could not read the lock lapses of a redelivered job: only those this worker still holds unwritten are taken off its crashes');
        return kept;
      }
    });
  }

  /** Writes what is kept one last time, and stops trying. Lapses still unwritten count as crashes. */
  close(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    return this.inTurn(async () => {
      await this.writeKept();
      this.closed = true;
      if (this.unwritten.length > 0) this.options.log.warn({ lapses: this.unwritten.length }, 'worker stopping with lock lapses PostgreSQL never took: each counts as a crash of its job');
      this.unwritten = [];
    });
  }

  private inTurn<T>(work: () => Promise<T>): Promise<T> {
    const result = this.turn.then(work);
    this.turn = result.catch(() => undefined);
    return result;
  }

  private keep(lapses: readonly LockLapseRow[]): void {
    this.unwritten.push(...lapses);
    const excess = this.unwritten.length - this.maxUnwritten;
    if (excess > 0) {
      this.unwritten.splice(0, excess);
      this.dropped += excess;
    }
  }

  /** Writes every kept lapse in one statement; on failure keeps them and tries again later. */
  private async writeKept(): Promise<void> {
    if (this.unwritten.length === 0 || this.closed) return;
    try {
      await this.options.write(this.unwritten);
    } catch (error) {
      this.writeFailures.failed(error, { lapses: this.unwritten.length });
      this.scheduleRetry();
      return;
    }
    this.writeFailures.succeeded({ lapses: this.unwritten.length });
    if (this.dropped > 0) this.options.log.warn({ lapses: this.dropped }, 'more lock lapses than a worker keeps came while PostgreSQL was away: the oldest were dropped and each counts as a crash of its job');
    // Writes and records take turns, so nothing was kept meanwhile.
    this.unwritten = [];
    this.dropped = 0;
    this.retryMs = this.firstRetryMs;
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    const waitMs = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, this.maxRetryMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.inTurn(() => this.writeKept());
    }, waitMs);
    this.retryTimer.unref();
  }
}
