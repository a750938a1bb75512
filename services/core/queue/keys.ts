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

/** Pub/sub channel on which cancel requests reach the workers. */
export function cancelChannel(prefix: string): string {
  return `${prefix}:${CANCEL_CHANNEL}`;
}

/** Hash of workerId → last heartbeat (ms since the epoch), read by `platform doctor`. */
export function workerHeartbeatKey(prefix: string): string {
  return `${prefix}:${WORKER_HEARTBEAT_KEY}`;
}
