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

/** Redis pub/sub channel on which the API tells workers to abort a running job. */
export const CANCEL_CHANNEL = 'platform:cancel';

/**
 * Redis hash (under the queue prefix) of workerId → last heartbeat (ms since the epoch).
 * A worker refreshes its own field every few seconds and deletes it when it stops cleanly.
 */
export const WORKER_HEARTBEAT_KEY = 'workers:heartbeat';

/** A heartbeat older than this belongs to a worker that died without stopping (SIGKILL, OOM): the workers delete it. */
export const WORKER_HEARTBEAT_FORGET_MS = 10 * 60_000;

/**
 * Stall detection. A worker renews its lock every lockDuration/2; a job whose lock lapses
 * (its worker died or hung) is moved back to wait and delivered again without spending an
 * attempt. BullMQ counts those lapses per job in Redis, where the count survives the worker:
 * a job whose run ended with its worker maxStalledCount + 1 times is not delivered again
 * but dead-lettered as a crash loop (a job that runs its worker out of memory, say), while
 * a job that merely shared a worker with it is delivered again.
 */
export const STALL_SETTINGS = {
  lockDurationMs: 30_000,
  stalledIntervalMs: 30_000,
  maxStalledCount: 2,
} as const;

/**
 * What BullMQ keeps in Redis. PostgreSQL holds every job's input, result and history, and
 * the relay's sweep treats a completed queue entry exactly as a missing one, so a completed
 * entry is removed as it completes: BullMQ's cheapest finish (no sorted set to add to and
 * trim), and Redis memory stays flat whatever the load. Failed entries are kept, bounded,
 * for the crash-loop mark BullMQ leaves on them.
 */
export const RETENTION = {
  completed: true,
  failed: { age: 24 * 3_600, count: 2_000 },
  eventsMaxLen: 2_000,
} as const;
