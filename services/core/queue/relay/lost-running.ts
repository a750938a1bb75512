import type { Pool } from 'pg';
import { STALL_SETTINGS } from '../../../contract';
import { applyTransitions, findStaleRunning, type EventRow, type Keyset, type QueueEntryRow, type TransitionRow } from '../../db/jobs';
import { followParentMoves } from '../../jobs/fanout';
import {
  attemptsAfter,
  auditDetail,
  crashesCharged,
  deferralsAfter,
  deferralsExhaustedReason,
  eventForLostAttempt,
  isTerminalStatus,
  LOST_ATTEMPT_DEPENDENCY,
  LOST_ATTEMPT_REASON,
  MOVES,
  planGivenUpEntry,
  type AuditContext,
} from '../../jobs/lifecycle';
import type { Logger } from '../../logger';
import type { Metrics } from '../../metrics';
import type { Enqueuer } from './enqueue';
import { lapsesOfEntry } from './entries';
import type { ResolvedRelayOptions } from './options';
import { walkStaleRows } from './stale-walk';

/** What the sweep writes for a row it repairs, as the lifecycle audits it. */
type RepairAudit = Extract<AuditContext, { event: 'defer' | 'abandon' }>;

/**
 * The sweep's moves of rows whose delivery the platform lost: running rows whose worker and
 * Redis job are both gone (deferred, the attempt not charged, or abandoned past their
 * deferrals), and rows BullMQ gave up on as crash loops (abandoned). Each is written through
 * the statement the workers use, and only if its row has not moved since the sweep read it.
 */
export class LostDeliveries {
  /**
   * Where the next sweep's walk over stale running rows goes on from; undefined: from the
   * oldest. Stale running rows Redis still holds (a recovery lane's waiters) stay stale, so a
   * walk that always began at the oldest would never reach a lost row behind a page of them.
   */
  private runningCursor: Keyset | undefined;

  constructor(
    private readonly deps: { generalPool: Pool; enqueuer: Pick<Enqueuer, 'redisStates' | 'requeue' | 'givenUpRuns'>; log: Logger; metrics: Metrics | undefined },
    private readonly options: Pick<ResolvedRelayOptions, 'lostRunningAfterMs' | 'sweepPageSize' | 'sweepMaxRows'>,
  ) {}

  /**
   * Running rows whose worker and Redis job are both gone: the lifecycle defers them, the
   * attempt not charged. Walks at most sweepMaxRows rows a page at a time, going on from
   * where the last sweep stopped, as the walk over queued rows does.
   */
  async reclaimLostRunning(): Promise<{ retried: number; failed: number; abandoned: number }> {
    const total = { retried: 0, failed: 0, abandoned: 0 };
    const { lostRunningAfterMs, sweepPageSize, sweepMaxRows } = this.options;
    const walk = await walkStaleRows(
      (after) => findStaleRunning(this.deps.generalPool, lostRunningAfterMs, sweepPageSize, after),
      { pageSize: sweepPageSize, maxRows: sweepMaxRows, from: this.runningCursor },
      async (running) => {
        const page = await this.reclaimPage(running);
        total.retried += page.retried;
        total.failed += page.failed;
        total.abandoned += page.abandoned;
      },
    );
    this.runningCursor = walk.next;
    return total;
  }

  private async reclaimPage(running: QueueEntryRow[]): Promise<{ retried: number; failed: number; abandoned: number }> {
    const { enqueuer, metrics } = this.deps;
    const states = await enqueuer.redisStates(running.map((row) => row.id));
    const abandoned = await this.settleCrashLooped(running.filter((row) => states.get(row.id) === 'crash-looped'));
    const lost = running.filter((row) => states.get(row.id) === 'missing' || states.get(row.id) === 'finished');
    const decided = lost.map((row) => ({ row, audit: lostAttemptAudit(row) }));
    const applied = await this.applyRepairs(decided);
    // Only the rows whose move was written: another writer may have moved a row since it was read.
    const retried = decided.filter(({ row, audit }) => audit.event === 'defer' && applied.has(row.id)).map(({ row }) => row);
    // Counted as a worker counts the same events, so the deferrals and dead letters of lost attempts show on the dashboards too.
    for (const { row, audit } of decided) {
      if (!applied.has(row.id)) continue;
      if (audit.event === 'defer') metrics?.jobsDeferred.inc({ type: row.type, dependency: LOST_ATTEMPT_DEPENDENCY });
      else metrics?.jobsFailed.inc({ type: row.type });
    }
    await enqueuer.requeue(retried, 'sweep');
    return { retried: retried.length, failed: applied.size - retried.length, abandoned };
  }

  /**
   * Rows BullMQ stopped delivering because their runs kept ending with their worker, which
   * the worker that saw it did not settle: dead-lettered, as the worker would, unless
   * enough of those runs were stopped for locks Redis let lapse (lock_lapses) that the job is
   * no crash loop; such a job is queued again in a new entry carrying the count. Answers how
   * many were dead-lettered.
   */
  async settleCrashLooped(rows: QueueEntryRow[]): Promise<number> {
    const lapsed = rows.filter((row) => row.lock_lapses > 0);
    const given = lapsed.length > 0 ? await this.deps.enqueuer.givenUpRuns(lapsed.map((row) => row.id)) : new Map<string, { runs: number; entryAddedAt: number }>();
    const crashLoops: { row: QueueEntryRow; reason: string }[] = [];
    for (const row of rows) {
      const entry = given.get(row.id);
      const plan = planGivenUpEntry(entry && crashesCharged(entry.runs, lapsesOfEntry(row, entry.entryAddedAt)), STALL_SETTINGS.maxStalledCount);
      if (plan.event === 'abandon') crashLoops.push({ row, reason: plan.reason });
      else if ((await this.deps.enqueuer.requeue([row], 'sweep', { crashes: plan.crashes })) === 1) {
        this.deps.log.info({ jobId: row.id, runs: entry?.runs, charged: plan.crashes }, 'BullMQ gave up on a job whose runs were stopped for locks Redis let lapse, not by crashes: it is queued again');
      }
    }
    return this.abandon(crashLoops);
  }

  /** Dead-letters rows BullMQ stopped delivering because their runs kept ending with their worker. */
  private async abandon(crashLoops: { row: QueueEntryRow; reason: string }[]): Promise<number> {
    if (crashLoops.length === 0) return 0;
    const applied = await this.applyRepairs(crashLoops.map(({ row, reason }) => ({ row, audit: { event: 'abandon' as const, reason } })));
    for (const { row } of crashLoops) if (applied.has(row.id)) this.deps.metrics?.jobsFailed.inc({ type: row.type });
    return applied.size;
  }

  /**
   * Writes the sweep's decisions through the same conditional statement the workers use,
   * each only if its row has not moved since the sweep read it. The audit row's detail is
   * what a worker's write of the same event stores, and so is the row's error: why the
   * attempt ended, as the contract's `error` promises.
   */
  private async applyRepairs(repairs: { row: QueueEntryRow; audit: RepairAudit }[]): Promise<Set<string>> {
    if (repairs.length === 0) return new Set();
    const now = Date.now();
    const rows: TransitionRow[] = repairs.map(({ row, audit }) => ({
      id: row.id,
      expected: MOVES[audit.event].from,
      status: MOVES[audit.event].to,
      attempt: row.attempts,
      attempts: attemptsAfter(audit.event, row.attempts),
      deferrals: deferralsAfter(audit.event, row.deferrals),
      error: audit.event === 'abandon' ? audit.reason : audit.error,
      finished_ms: isTerminalStatus(MOVES[audit.event].to) ? now : null,
      unchanged_since_us: row.updated_us,
    }));
    const events: EventRow[] = repairs.map(({ row, audit }) => ({
      job_id: row.id,
      from_status: row.status,
      to_status: MOVES[audit.event].to,
      attempt: row.attempts,
      detail: auditDetail(audit),
      at_ms: now,
    }));
    const written = await applyTransitions(this.deps.generalPool, rows, events);
    await followParentMoves(written.parentMoves, { generalPool: this.deps.generalPool, relay: this.deps.enqueuer, log: this.deps.log });
    return written.applied;
  }
}

/**
 * A lost attempt, recorded as a worker records one that failed on Redis; a deferral is
 * queued again at once (no backoff): the attempt was lost, not refused.
 */
function lostAttemptAudit(row: QueueEntryRow): RepairAudit {
  const failure = { dependency: LOST_ATTEMPT_DEPENDENCY, error: LOST_ATTEMPT_REASON };
  return eventForLostAttempt(row) === 'defer'
    ? { event: 'defer', attempt: row.attempts, ...failure, deferral: row.deferrals + 1, retryInMs: 0 }
    : { event: 'abandon', reason: deferralsExhaustedReason(row.deferrals, failure) };
}
