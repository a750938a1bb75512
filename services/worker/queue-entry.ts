import { validate as isUuid } from 'uuid';
import { MAX_JOBS_PER_QUEUE_ENTRY } from '../contract';

/*
 * What a queue entry's data names, read as untrusted: Redis is not the source of truth, so
 * an entry that does not hold well-formed job ids names nothing.
 */

/** The job ids of a shared entry, or undefined when the data is not one. */
export function sharedJobIds(data: unknown): string[] | undefined {
  const jobIds = (data as { jobIds?: unknown } | null)?.jobIds;
  if (!Array.isArray(jobIds) || jobIds.length === 0 || jobIds.length > MAX_JOBS_PER_QUEUE_ENTRY) return undefined;
  return jobIds.every((id): id is string => typeof id === 'string' && isUuid(id)) ? jobIds : undefined;
}

/** The job id of a job's own entry, or undefined when the data is not one. */
export function ownJobId(data: unknown): string | undefined {
  const jobId = (data as { jobId?: unknown } | null)?.jobId;
  return typeof jobId === 'string' && isUuid(jobId) ? jobId : undefined;
}
