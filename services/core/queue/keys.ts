import { CANCEL_CHANNEL, QUEUES, WORKER_HEARTBEAT_KEY } from '../../contract';

/**
 * Redis names derived from the queue prefix. Everything lives under the prefix so that
 * several platforms (or test runs) can share one Redis, and so the hash tag keeps a
 * queue's keys in one Redis Cluster slot.
 */

/** The hash BullMQ keeps for a job: `<prefix>:<queue>:<jobId>`. */
export function bullJobKey(prefix: string, jobId: string): string {
  return `${prefix}:${QUEUES.jobs}:${jobId}`;
}

/** Prefix of the ids of queue entries that carry several jobs; a job's own entry has the job id (a UUID). */
export const SHARED_ENTRY_ID_PREFIX = 'shared-';

/**
 * Hash of jobId → id of the shared entry that carries it, while it does: how the sweep
 * finds a job that has no entry of its own. Under the queue's keys, so it lives in the
 * queue's Redis Cluster slot and goes when the queue is obliterated.
 */
export function sharedEntriesKey(prefix: string): string {
  return `${prefix}:${QUEUES.jobs}:shared-entry-of`;
}

/** Pub/sub channel on which cancel requests reach the workers. */
export function cancelChannel(prefix: string): string {
  return `${prefix}:${CANCEL_CHANNEL}`;
}

/** Hash of workerId → last heartbeat (ms since the epoch), read by `platform doctor`. */
export function workerHeartbeatKey(prefix: string): string {
  return `${prefix}:${WORKER_HEARTBEAT_KEY}`;
}

/**
 * The name a worker process gives its Redis connection (CLIENT SETNAME): Redis lists it
 * for exactly as long as that process is alive and connected, which is how a process
 * starting in a worker slot tells a predecessor that ended from one still running.
 */
export function workerConnectionName(workerId: string): string {
  return `platform-worker:${workerId}`;
}

/** Hash of worker slot → the SlotHolder (JSON) of the process running in it (see WorkerSlots). */
export function workerSlotsKey(prefix: string): string {
  return `${prefix}:workers:slots`;
}
