import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import type { Logger } from '../../logger';
import type { Metrics } from '../../metrics';
import { pruneSharedEntries } from '../job-states';
import type { Enqueuer } from './enqueue';
import { measuringLag } from './lag';
import { LostDeliveries } from './lost-running';
import { withinEnqueueTimeout, type ResolvedRelayOptions } from './options';
import { QueuedRows } from './queued-rows';
import { underSweepLock } from './sweep-lock';

export interface SweepReport {
  /** False when another process holds the sweep lock and this call did nothing. */
  ran: boolean;
  checked: number;
  /**
   * True when this sweep reached the newest stale queued row: it and the sweeps since the
   * last one that did looked at every row once (one sweep unless the backlog is past sweepMaxRows).
   */
  passEnded: boolean;
  /**
   * Queued rows Redis did not hold at this sweep for the first time: most are still on
   * their way (the in-process hand-off is behind under load), so they are only noted.
   */
  pending: number;
  /** Queued rows Redis did not hold at two looks in a row (two sweeps, or two passes over a backlog past sweepMaxRows), unchanged in between: lost, and handed over again. */
  requeued: number;
  /** Queued rows missing at two looks that Redis did not take when handed over again (full, not answering): still missing, handed over again at the next sweep. */
  refused: number;
  /** Running rows whose attempt was lost (worker and Redis job both gone): queued again, the attempt not charged (a deferral, not a retry). */
  retried: number;
  /** Running rows whose attempt was lost with no deferral left (MAX_DEFERRALS spent; attempts do not matter): abandoned, in the dead-letter set. */
  failed: number;
  /** Rows BullMQ gave up on as crash loops, dead-lettered. */
  abandoned: number;
  /** Age of the oldest queued row Redis did not hold, in seconds (0 when none). */
  lagSeconds: number;
}

const NOT_RUN: SweepReport = { ran: false, checked: 0, passEnded: false, pending: 0, requeued: 0, refused: 0, retried: 0, failed: 0, abandoned: 0, lagSeconds: 0 };

/** A measured lag stays exported this many sweep intervals: a process that keeps winning the sweep lock never drops it between scrapes. */
const LAG_FRESH_SWEEPS = 3;
const DEFAULT_LAG_FRESH_MS = 15_000;

/**
 * One sweep: finds queued rows Redis does not hold and hands them over again once they are
 * lost (not merely not added yet: see SweepReport.pending); takes back running rows whose
 * worker and Redis job are both gone; dead-letters rows BullMQ gave up on as crash loops;
 * prunes the shared-entry map. Only one process sweeps at a time (the sweep lock); the adds
 * are idempotent anyway.
 */
export class Sweep {
  /** The sweeper's interval, once this process runs one: how long a measured lag stays exported. */
  intervalMs: number | undefined;
  private sweeping: Promise<SweepReport> | undefined;
  /** Where the next sweep goes on pruning the shared-entry map from ('0': the start). */
  private pruneCursor = '0';
  private readonly queued: QueuedRows;
  private readonly lost: LostDeliveries;

  constructor(
    private readonly deps: { generalPool: Pool; connection: Redis; enqueuer: Enqueuer; log: Logger; metrics: Metrics | undefined },
    private readonly options: ResolvedRelayOptions,
  ) {
    this.lost = new LostDeliveries(deps, options);
    this.queued = new QueuedRows({ ...deps, lost: this.lost }, options);
  }

  /** True while a sweep of this process runs. */
  get running(): boolean {
    return this.sweeping !== undefined;
  }

  /** Runs a sweep, or joins the one this process runs now. */
  run(): Promise<SweepReport> {
    this.sweeping ??= this.underLock().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  /** Waits for a sweep running now, whatever its outcome. */
  async settled(): Promise<void> {
    await this.sweeping?.catch(() => undefined);
  }

  /** The relay lag without repairing anything (queue stats, doctor). Read-only, so it needs no lock. */
  async measureLagSeconds(): Promise<number> {
    const { lagSeconds } = await measuringLag(this.deps.metrics, this.lagFreshForMs(), () => this.queued.look('measure'));
    return lagSeconds;
  }

  private async underLock(): Promise<SweepReport> {
    const report = await underSweepLock(this.deps.generalPool, async () => {
      const queued = await measuringLag(this.deps.metrics, this.lagFreshForMs(), () => this.queued.look('repair'));
      const running = await this.lost.reclaimLostRunning();
      await this.pruneSharedEntries();
      return { ran: true, ...queued, retried: running.retried, failed: running.failed, abandoned: queued.abandoned + running.abandoned };
    });
    if (!report) return NOT_RUN;
    if (report.requeued > 0 || report.refused > 0 || report.retried > 0 || report.failed > 0 || report.abandoned > 0) this.deps.log.warn(report, 'relay sweep repaired jobs missing from Redis (never handed over, or lost by it)');
    return report;
  }

  private lagFreshForMs(): number {
    return this.options.lagFreshForMs ?? (this.intervalMs === undefined ? DEFAULT_LAG_FRESH_MS : LAG_FRESH_SWEEPS * this.intervalMs);
  }

  /** Drops a page of shared-entry map fields whose entry is done; a failure leaves them to the next sweep. */
  private async pruneSharedEntries(): Promise<void> {
    try {
      const { cursor, pruned } = await withinEnqueueTimeout(this.options, pruneSharedEntries(this.deps.connection, this.options.prefix, this.pruneCursor, this.options.sweepPageSize), 'shared entry prune');
      this.pruneCursor = cursor;
      if (pruned > 0) this.deps.log.debug({ pruned }, 'dropped shared-entry map fields of entries that are done');
    } catch (error) {
      this.deps.log.debug({ err: error }, 'could not prune the shared-entry map; the next sweep will');
    }
  }
}
