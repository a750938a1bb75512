import type { Pool } from 'pg';
import { QUEUE_DEPTH_STATES, QUEUES, type QueueDepthState } from '../../contract';
import { countByStatus, findJob, listDeadLetters, toJobSummary, toJobView, toTaskCounts } from '../db/jobs';
import { isDatabaseUnavailable, isStatementTimeout } from '../db/errors';
import { ChangedSinceReadError, ConflictError, DomainError, NotFoundError, ServiceUnavailableError } from '../errors';
import type { Logger } from '../logger';
import type { Relay } from '../queue/relay';
import { decodeCursor, pageOf } from './cursor';
import { requeueAndHandOver, retryFanOutAndHandOver } from './fanout';
import { MOVES } from './lifecycle';
import type { JobAdmin, JobPage, QueueStats, ReconcileReport } from './types';

/**
 * BullMQ's state names for our depth states. Prioritized jobs sit in their own sorted set,
 * not in `wait`: a depth that read only `wait` would miss every prioritized job.
 */
const BULLMQ_STATE: Record<QueueDepthState, 'wait' | 'prioritized' | 'delayed' | 'active' | 'failed'> = {
  waiting: 'wait',
  prioritized: 'prioritized',
  delayed: 'delayed',
  active: 'active',
  failed: 'failed',
};

export async function queueDepth(relay: Relay): Promise<Record<QueueDepthState, number>> {
  const counts = await relay.queue.getJobCounts(...QUEUE_DEPTH_STATES.map((state) => BULLMQ_STATE[state]));
  const depth = {} as Record<QueueDepthState, number>;
  for (const state of QUEUE_DEPTH_STATES) depth[state] = counts[BULLMQ_STATE[state]] ?? 0;
  return depth;
}

/**
 * Runs an operation that needs Redis (the BullMQ queue's counts, its pause flag). When Redis
 * does not answer (ioredis's "Command timed out", a closed connection), the caller is told a
 * dependency is away and to come back (503 with Retry-After, as the API's document declares),
 * not handed an unexpected error. PostgreSQL's own outages and the domain's errors pass
 * through as they are: they already say what they are.
 */
async function needingRedis<T>(log: Logger, what: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (error instanceof DomainError || isDatabaseUnavailable(error) || isStatementTimeout(error)) throw error;
    log.warn({ err: error }, `Redis did not answer ${what}`);
    throw new ServiceUnavailableError(`Redis did not answer ${what} (${error instanceof Error ? error.message : String(error)}); try again shortly`);
  }
}

/** Long enough for a hand-off in flight to reach Redis, so reconcile's second look tells it from a lost job. */
const RECONCILE_CONFIRM_MS = 2_000;

export function createJobAdmin(deps: { generalPool: Pool; relay: Relay; log: Logger; reconcileConfirmMs?: number }): JobAdmin {
  const { generalPool, relay } = deps;

  return {
    async queueStats(): Promise<QueueStats> {
      const [counts, paused, statuses, relayLagSeconds] = await Promise.all([
        needingRedis(deps.log, 'the queue counts', () => queueDepth(relay)),
        needingRedis(deps.log, 'whether the queue is paused', () => relay.queue.isPaused()),
        countByStatus(generalPool),
        needingRedis(deps.log, 'the relay lag', () => relay.measureLagSeconds()),
      ]);
      return { queue: QUEUES.jobs, paused, counts, statuses, relayLagSeconds };
    },

    async pause(log = deps.log) {
      await needingRedis(log, 'the pause', () => relay.queue.pause());
      log.info({ queue: QUEUES.jobs }, 'queue paused');
    },

    async resume(log = deps.log) {
      await needingRedis(log, 'the resume', () => relay.queue.resume());
      log.info({ queue: QUEUES.jobs }, 'queue resumed');
    },

    async deadLetters({ limit, cursor, type, errorContains }): Promise<JobPage> {
      const rows = await listDeadLetters(generalPool, { limit: limit + 1, after: decodeCursor(cursor), type, errorContains });
      return pageOf(rows, limit, (row) => row.finished_us, toJobSummary);
    },

    async replay(jobId, log = deps.log, { asRead } = {}) {
      const current = await findJob(generalPool, jobId);
      if (!current) throw new NotFoundError('Job not found.');
      // A fan-out job is replayed as its owner retries it: its failed and cancelled tasks run
      // again, not its reduce step over the tasks its failure policy failed it for.
      const fansOut = toTaskCounts(current) !== null;
      const replayed = fansOut
        ? await retryFanOutAndHandOver(generalPool, relay, jobId, undefined, 'operator', asRead)
        : await requeueAndHandOver({ generalPool, relay, log }, current, undefined, 'operator', asRead);
      if (!replayed) {
        const row = await findJob(generalPool, jobId);
        if (!row) throw new NotFoundError('Job not found.');
        // Against what the caller read: in another state now, or replayable yet refused because it moved and came back (replayed, then failed again).
        if (asRead && (row.status !== asRead.status || MOVES.requeue.from.includes(row.status))) {
          throw new ChangedSinceReadError(`The job changed after it was read: it was ${asRead.status}, it is ${row.status} (last changed ${row.updated_at.toISOString()}); not replayed.`);
        }
        throw new ConflictError(`Only ${MOVES.requeue.from.join(' or ')} jobs can be replayed; this one is ${row.status}.`);
      }
      log.info({ jobId, previous: current.status, handedOver: replayed.handedOver }, 'job replayed');
      return { job: toJobView(fansOut ? ((await findJob(generalPool, jobId)) ?? replayed.row) : replayed.row), handedOver: replayed.handedOver };
    },

    async reconcile(): Promise<ReconcileReport> {
      // Two whole walks over the queued rows (a job is handed over once two looks found it missing); one
      // walk is several sweeps when the backlog is past what one sweep checks. Another process sweeping: it does the work.
      const report: ReconcileReport = { checked: { firstLook: 0, secondLook: 0 }, reenqueued: 0, refused: 0, retried: 0, failed: 0, abandoned: 0, pending: 0, sweptElsewhere: false };
      const walk = async (look: keyof ReconcileReport['checked']) => {
        for (;;) {
          const sweep = await relay.sweep();
          if (!sweep.ran) report.sweptElsewhere = true;
          report.checked[look] += sweep.checked;
          report.reenqueued += sweep.requeued;
          report.refused += sweep.refused;
          report.retried += sweep.retried;
          report.failed += sweep.failed;
          report.abandoned += sweep.abandoned;
          // What the first look noted is what the second hands over; only the second's notes are left pending.
          if (look === 'secondLook') report.pending += sweep.pending;
          if (!sweep.ran || sweep.passEnded) return;
        }
      };
      await walk('firstLook');
      await new Promise((resolve) => setTimeout(resolve, deps.reconcileConfirmMs ?? RECONCILE_CONFIRM_MS));
      await walk('secondLook');
      return report;
    },
  };
}
