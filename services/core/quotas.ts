import type { Pool } from 'pg';
import type { Env } from '../contract';
import type { StorageQuota } from './db/files';
import { DatabaseDeadlineError } from './db/errors';
import { QuotaExceededError } from './errors';
import { withTimeout } from './timeout';

export type QuotaEnv = Pick<Env, 'QUOTA_STORED_BYTES' | 'QUOTA_FILES' | 'QUOTA_QUEUED_JOBS'>;

export interface Quotas {
  /** What an owner may store in all (QUOTA_FILES, QUOTA_STORED_BYTES). */
  readonly storage: StorageQuota;
  /** How many bytes the owner's next upload may have; throws QuotaExceededError when files or bytes are used up. */
  uploadAllowance(ownerId: string): Promise<number>;
  /**
   * Throws QuotaExceededError when `entries` more queued jobs would take the owner past
   * QUOTA_QUEUED_JOBS. A fan-out job's tasks are queued jobs like any other, so its
   * submission asks for as many entries as it has tasks (queueEntriesOf).
   */
  assertCanQueue(ownerId: string, entries?: number): Promise<void>;
}

/** How long a counted number of queued jobs is trusted: briefly near the quota, long far below it. */
const NEAR_QUOTA_TTL_MS = 1_000;
const FAR_FROM_QUOTA_TTL_MS = 30_000;
const MAX_CACHED_OWNERS = 10_000;
/** A recount is on the submit path: it waits no longer than a submit waits for its commit (Submitter). */
const RECOUNT_WITHIN_MS = 5_000;

/**
 * Per-user quotas. Stored bytes and files are counted at each upload (uploads are few and
 * slow). Queued jobs are checked on the submit path, where a COUNT per request would cost
 * a PostgreSQL round trip per job. The count is re-read once
 * a second while the owner is within half of the quota, every 30 s below that, and the
 * submits since are added to it; a burst may pass the quota by what one process accepts
 * before its next count. No index serves the count (one would be written by every submit):
 * it walks the queued jobs, which the recount intervals keep rare.
 */
export function createQuotas(pool: Pool, env: QuotaEnv): Quotas {
  const queued = new Map<string, { count: number; countedAt: number; pending?: Promise<number> }>();

  const countQueued = async (ownerId: string): Promise<number> => {
    const counting = pool.query<{ count: number }>({
      name: 'quota_queued_jobs',
      text: "SELECT count(*)::int AS count FROM jobs WHERE owner_id = $1 AND status = 'queued'",
      values: [ownerId],
    });
    const { rows } = await withTimeout(counting, RECOUNT_WITHIN_MS, () => new DatabaseDeadlineError());
    return rows[0]?.count ?? 0;
  };

  return {
    storage: { files: env.QUOTA_FILES, bytes: env.QUOTA_STORED_BYTES },

    async uploadAllowance(ownerId) {
      const { rows } = await pool.query<{ files: number; bytes: string }>({
        name: 'quota_stored',
        text: 'SELECT count(*)::int AS files, COALESCE(sum(size), 0)::bigint AS bytes FROM files WHERE owner_id = $1',
        values: [ownerId],
      });
      const files = rows[0]?.files ?? 0;
      const bytes = Number(rows[0]?.bytes ?? 0);
      if (files >= env.QUOTA_FILES) throw new QuotaExceededError(`file quota reached: ${files} of ${env.QUOTA_FILES} files stored; delete some first`);
      const remaining = env.QUOTA_STORED_BYTES - bytes;
      if (remaining <= 0) throw new QuotaExceededError(`storage quota reached: ${bytes} of ${env.QUOTA_STORED_BYTES} bytes stored; delete some files first`);
      return remaining;
    },

    async assertCanQueue(ownerId, entries = 1) {
      const now = Date.now();
      let entry = queued.get(ownerId);
      const trustedFor = entry && entry.count * 2 < env.QUOTA_QUEUED_JOBS ? FAR_FROM_QUOTA_TTL_MS : NEAR_QUOTA_TTL_MS;
      if (!entry || now - entry.countedAt > trustedFor) {
        if (!entry?.pending) {
          const pending = countQueued(ownerId);
          if (queued.size >= MAX_CACHED_OWNERS && !queued.has(ownerId)) queued.clear();
          entry = { count: entry?.count ?? 0, countedAt: entry?.countedAt ?? 0, pending };
          queued.set(ownerId, entry);
          try {
            entry.count = await pending;
            entry.countedAt = Date.now();
          } finally {
            entry.pending = undefined;
          }
        } else await entry.pending;
      }
      if (entry.count + entries > env.QUOTA_QUEUED_JOBS) {
        throw new QuotaExceededError(
          entries === 1
            ? `queued-jobs quota reached: ${env.QUOTA_QUEUED_JOBS} jobs waiting; let some finish or cancel them`
            : `queued-jobs quota: this fan-out queues ${entries} tasks, and ${entry.count} of the ${env.QUOTA_QUEUED_JOBS} places are taken; let some finish or split the job`,
        );
      }
      entry.count += entries;
    },
  };
}
