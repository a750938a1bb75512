/** BullMQ queue names. One queue carries every job type; the type travels in the job name. */
export const QUEUES = {
  jobs: 'jobs',
} as const;

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
