import { JOB_TYPES } from './jobs';
import { BACKLOG_STATUSES } from './queues';

/** Types whose jobs share queue entries (jobsPerQueueEntry > 1): they take no share of a user's slots (see JOBS_RUNNING_PER_USER). */
const SHARED_ENTRY_TYPES = Object.values(JOB_TYPES)
  .filter((definition) => definition.jobsPerQueueEntry > 1)
  .map((definition) => definition.type);

const quoted = (values: readonly string[]) => values.map((value) => `'${value}'`).join(', ');

/**
 * The backlog as one count, for an autoscaler that reads PostgreSQL (KEDA's postgresql
 * scaler): the jobs queued or running that workers could run now. A user's jobs in entries
 * of their own count up to `jobsRunningPerUser`, the most of them that run at once: the
 * rest wait for that user's share, and more workers would not start them sooner. Jobs that
 * share entries count in full. It reads `status`, `owner_id` and `type` of `jobs`, the
 * columns the scaler's role may see, and nothing a user submitted.
 */
export function backlogQuery(jobsRunningPerUser: number): string {
  if (!Number.isInteger(jobsRunningPerUser) || jobsRunningPerUser < 1) throw new RangeError('jobsRunningPerUser must be a positive integer');
  const shared = SHARED_ENTRY_TYPES.length > 0 ? `type IN (${quoted(SHARED_ENTRY_TYPES)})` : 'false';
  return (
    `SELECT coalesce(sum(least(own_entries, ${jobsRunningPerUser}) + shared_entries), 0)::bigint AS count FROM (` +
    `SELECT count(*) FILTER (WHERE NOT ${shared}) AS own_entries, count(*) FILTER (WHERE ${shared}) AS shared_entries ` +
    `FROM jobs WHERE status IN (${quoted(BACKLOG_STATUSES)}) GROUP BY owner_id) AS per_user`
  );
}

/** The share a backlog query was made for, or undefined when the query is not one backlogQuery makes. */
export function shareOfBacklogQuery(query: string): number | undefined {
  const share = /least\(own_entries, (\d+)\)/.exec(query)?.[1];
  if (share === undefined) return undefined;
  const perUser = Number(share);
  return perUser >= 1 && backlogQuery(perUser) === query ? perUser : undefined;
}
