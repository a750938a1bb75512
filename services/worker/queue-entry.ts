import { validate as isUuid } from 'uuid';
import { MAX_JOBS_PER_QUEUE_ENTRY } from '../contract';
import type { OwnEntryData, SharedEntryData } from '../core/queue/relay';

/*
 * What a queue entry's data names (its shapes: the relay's OwnEntryData and SharedEntryData),
 * read as untrusted: Redis is not the source of truth, so an entry that does not hold
 * well-formed job ids names nothing.
 */

/** The job ids of a shared entry, or undefined when the data is not one. */
export function sharedJobIds(data: unknown): string[] | undefined {
  const jobIds: unknown = (data as Partial<Record<keyof SharedEntryData, unknown>> | null)?.jobIds;
  if (!Array.isArray(jobIds) || jobIds.length === 0 || jobIds.length > MAX_JOBS_PER_QUEUE_ENTRY) return undefined;
  return jobIds.every((id): id is string => typeof id === 'string' && isUuid(id)) ? jobIds : undefined;
}

/** The job id of a job's own entry, or undefined when the data is not one. */
export function ownJobId(data: unknown): string | undefined {
  const jobId: unknown = (data as Partial<Record<keyof OwnEntryData, unknown>> | null)?.jobId;
  return typeof jobId === 'string' && isUuid(jobId) ? jobId : undefined;
}
