import type { Pool } from 'pg';
import { QUEUE_DEPTH_STATES, QUEUES, type QueueDepthState } from '../../contract';
import { countByStatus, findJob, listDeadLetters, requeueJob, toJobView } from '../db/jobs';
import { ConflictError, NotFoundError } from '../errors';
import type { Logger } from '../logger';
import type { Relay } from '../queue/relay';
import { decodeCursor, encodeCursor } from './cursor';
import type { JobAdmin, JobPage, QueueStats } from './types';

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

export function createJobAdmin(deps: { pool: Pool; relay: Relay; log: Logger }): JobAdmin {
  const { pool, relay } = deps;
  return {
    async queueStats(): Promise<QueueStats> {
      const [counts, paused, statuses, relayLagSeconds] = await Promise.all([
        queueDepth(relay),
        relay.queue.isPaused(),
        countByStatus(pool),
        relay.measureLagSeconds(),
      ]);
      return { queue: QUEUES.jobs, paused, counts, statuses, relayLagSeconds };
    },

    async pause() {
      await relay.queue.pause();
      deps.log.info({ queue: QUEUES.jobs }, 'queue paused');
    },

    async resume() {
      await relay.queue.resume();
      deps.log.info({ queue: QUEUES.jobs }, 'queue resumed');
    },

    async deadLetters({ limit, cursor }): Promise<JobPage> {
      const rows = await listDeadLetters(pool, { limit: limit + 1, after: decodeCursor(cursor) });
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        items: page.map(toJobView),
        nextCursor: rows.length > limit && last ? encodeCursor({ at: last.finished_us, id: last.id }) : null,
      };
    },

    async replay(jobId) {
      const requeued = await requeueJob(pool, jobId, undefined, 'replayed from the dead-letter set');
      if (!requeued) {
        const row = await findJob(pool, jobId);
        if (!row) throw new NotFoundError('Job not found.');
        throw new ConflictError(`Only failed or cancelled jobs can be replayed; this one is ${row.status}.`);
      }
      await relay.requeue([requeued.row]);
      deps.log.info({ jobId, previous: requeued.previous }, 'job replayed');
      return toJobView(requeued.row);
    },

    async reconcile() {
      const report = await relay.sweep();
      return report.requeued + report.reclaimed;
    },
  };
}
