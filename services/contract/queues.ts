import type { JobStatus } from './job-model';

/** BullMQ queue names. One queue carries every job type; the type travels in the job name. */
export const QUEUES = {
  jobs: 'jobs',
} as const;

/**
 * The work a worker sees: jobs accepted and not finished. PostgreSQL holds every one of
 * them (BullMQ splits the same jobs over its wait list, prioritized and delayed sorted
 * sets and the active list, and may briefly lack one the relay has not handed over yet).
 */
export const BACKLOG_STATUSES: readonly JobStatus[] = ['queued', 'running'];

/**
 * The backlog as one count, for an autoscaler that reads PostgreSQL (KEDA's postgresql
 * scaler). It reads only `jobs.status`, the one column the scaler's role may see, and is
 * answered from the partial indexes on queued and running jobs.
 */
export const BACKLOG_QUERY = `SELECT count(*) FROM jobs WHERE status IN (${BACKLOG_STATUSES.map((s) => `'${s}'`).join(', ')})`;

/** Redis pub/sub channel on which the API tells workers to abort a running job. */
export const CANCEL_CHANNEL = 'platform:cancel';

/** Redis key (under the queue prefix) where each worker writes its heartbeat. */
export const WORKER_HEARTBEAT_KEY = 'workers:heartbeat';

/**
 * Stall detection. A worker renews its lock every lockDuration/2; a job whose lock lapses
 * is moved back to wait. Two lapses are tolerated so a job interrupted by two rolling
 * deploys in a row is retried rather than failed (BullMQ fails it after maxStalledCount).
 */
export const STALL_SETTINGS = {
  lockDurationMs: 30_000,
  stalledIntervalMs: 30_000,
  maxStalledCount: 2,
} as const;

/** Bounds on what BullMQ keeps in Redis, so memory stays flat under sustained load. */
export const RETENTION = {
  completed: { age: 3_600, count: 10_000 },
  failed: { age: 7 * 24 * 3_600, count: 50_000 },
  eventsMaxLen: 10_000,
} as const;
