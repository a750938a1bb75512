import type { Pool } from 'pg';
import type { Env } from '../contract';
import type { StorageQuota } from './db/files';
import { DatabaseDeadlineError } from './db/errors';
import { QuotaExceededError } from './errors';
import { readJobUsage, type JobUsage } from './db/job-usage';
import { withTimeout } from './timeout';

export type QuotaEnv = Pick<Env, 'QUOTA_STORED_BYTES' | 'QUOTA_FILES' | 'QUOTA_QUEUED_JOBS' | 'QUOTA_JOBS' | 'QUOTA_JOB_BYTES' | 'JOB_RETENTION_DAYS'>;

/** What a submission adds, as the submit quotas count it. */
export interface Submission {
  /** Queue entries: a fan-out job's tasks (the job itself waits), one otherwise (queueEntriesOf). */
  queueEntries: number;
  /** Jobs kept: a fan-out job and its tasks, one otherwise. */
  jobs: number;
  /** The size of the input, as the body that carried it. */
  bytes: number;
}

/** One quota: what the owner uses of it now, and the limit. */
/**
 * What an upload's request says of its file's size before its body is read: `exact` where it
 * says the size (a raw upload's Content-Length), `atLeast` where it says only a bound (a
 * multipart body's file part is sized as it is read).
 */
export type FileSizeBeforeBody = { exact: number } | { atLeast: number };

export interface QuotaUse {
  used: number;
  limit: number;
}

/** Every per-user quota, as the owner stands now. */
export interface QuotaUsage {
  jobs: QuotaUse;
  jobBytes: QuotaUse;
  queuedJobs: QuotaUse;
  files: QuotaUse;
  storedBytes: QuotaUse;
}

export interface Quotas {
  /** What an owner may store in all (QUOTA_FILES, QUOTA_STORED_BYTES). */
  readonly storage: StorageQuota;
  /**
   * How many bytes the owner's next upload may have; throws QuotaExceededError when the
   * owner's files are used up, or the bytes left would not hold the file as far as its request
   * tells its size before the body is read.
   */
  uploadAllowance(ownerId: string, fileSize: FileSizeBeforeBody): Promise<number>;
  /**
   * Throws QuotaExceededError when the submission would take the owner past QUOTA_QUEUED_JOBS
   * (jobs waiting to run), QUOTA_JOBS (jobs kept, finished ones until deleted or purged) or
   * QUOTA_JOB_BYTES (their inputs and results). Results count once stored, so a user's
   * results may take them past QUOTA_JOB_BYTES; their next submit is refused.
   */
  assertCanSubmit(ownerId: string, submission: Submission): Promise<void>;
  /** The owner's standing against every quota, read now (not the submit checks' cached figures). */
  usage(ownerId: string): Promise<QuotaUsage>;
}

/** How long a counted figure is trusted: briefly near its quota, long far below it. */
const NEAR_QUOTA_TTL_MS = 1_000;
const FAR_FROM_QUOTA_TTL_MS = 30_000;
const MAX_CACHED_OWNERS = 10_000;
/** A recount is on the submit path: it waits no longer than a submit waits for its commit (Submitter). */
const RECOUNT_WITHIN_MS = 5_000;

/**
 * Per-owner figures read from PostgreSQL and trusted for a while: `nearQuota` says whether
 * a figure is within half of its quota (re-read after a second) or far below it (after
 * 30 s). What the owner's submits add meanwhile is added by the caller (`entry.value`),
 * so a burst may pass a quota by what one process accepts before its next read.
 */
function ownerFigures<T>(read: (ownerId: string) => Promise<T>, nearQuota: (value: T) => boolean, zero: () => T) {
  interface Figure {
    value: T;
    readAt: number;
    pending?: Promise<T>;
  }
  const cache = new Map<string, Figure>();
  return async (ownerId: string): Promise<{ value: T }> => {
    const entry = cache.get(ownerId);
    const trustedFor = entry && !nearQuota(entry.value) ? FAR_FROM_QUOTA_TTL_MS : NEAR_QUOTA_TTL_MS;
    if (entry && Date.now() - entry.readAt <= trustedFor) return entry;
    if (entry?.pending) {
      await entry.pending;
      return entry;
    }
    const pending = withTimeout(read(ownerId), RECOUNT_WITHIN_MS, () => new DatabaseDeadlineError());
    if (cache.size >= MAX_CACHED_OWNERS && !cache.has(ownerId)) cache.clear();
    const fresh: Figure = { value: entry?.value ?? zero(), readAt: entry?.readAt ?? 0, pending };
    cache.set(ownerId, fresh);
    try {
      fresh.value = await pending;
      fresh.readAt = Date.now();
    } finally {
      fresh.pending = undefined;
    }
    return fresh;
  };
}

/**
 * Per-user quotas. Stored bytes and files are counted at each upload (uploads are few and
 * slow). The submit quotas are checked on the submit path, where a count per request would
 * cost a PostgreSQL round trip per job: queued jobs are counted (no index serves the count,
 * one would be written by every submit: it walks the owner's queued jobs, which the
 * intervals keep rare), jobs kept and their bytes are read from job_usage (a few rows per
 * owner that the statements writing jobs keep exact), each per ownerFigures.
 */
export function createQuotas(pool: Pool, env: QuotaEnv): Quotas {
  const countQueued = async (ownerId: string): Promise<number> => {
    const { rows } = await pool.query<{ count: number }>({
      name: 'quota_queued_jobs',
      text: "SELECT count(*)::int AS count FROM jobs WHERE owner_id = $1 AND status = 'queued'",
      values: [ownerId],
    });
    return rows[0]?.count ?? 0;
  };
  const countStored = async (ownerId: string): Promise<{ files: number; bytes: number }> => {
    const { rows } = await pool.query<{ files: number; bytes: string }>({
      name: 'quota_stored',
      text: 'SELECT count(*)::int AS files, COALESCE(sum(size), 0)::bigint AS bytes FROM files WHERE owner_id = $1',
      values: [ownerId],
    });
    return { files: rows[0]?.files ?? 0, bytes: Number(rows[0]?.bytes ?? 0) };
  };
  const queuedJobs = ownerFigures(
    countQueued,
    (count) => count * 2 >= env.QUOTA_QUEUED_JOBS,
    () => 0,
  );
  const keptJobs = ownerFigures(
    (ownerId) => readJobUsage(pool, ownerId),
    (usage) => usage.jobs * 2 >= env.QUOTA_JOBS || usage.bytes * 2 >= env.QUOTA_JOB_BYTES,
    (): JobUsage => ({ jobs: 0, bytes: 0 }),
  );
  const keptFor = `finished jobs are kept ${env.JOB_RETENTION_DAYS} days; delete some first`;

  return {
    storage: { files: env.QUOTA_FILES, bytes: env.QUOTA_STORED_BYTES },

    async uploadAllowance(ownerId, fileSize) {
      const { files, bytes } = await countStored(ownerId);
      if (files >= env.QUOTA_FILES) throw new QuotaExceededError(`file quota reached: ${files} of ${env.QUOTA_FILES} files stored; delete some first`);
      // Stored bytes can pass the quota: uploads under way at once each had room, or the quota was lowered since.
      const remaining = Math.max(0, env.QUOTA_STORED_BYTES - bytes);
      if (('exact' in fileSize ? fileSize.exact : fileSize.atLeast) > remaining) {
        const file = 'exact' in fileSize ? `this file is ${fileSize.exact} bytes, and ` : '';
        throw new QuotaExceededError(`storage quota: ${file}${bytes} of ${env.QUOTA_STORED_BYTES} bytes are stored; delete some files first`);
      }
      return remaining;
    },

    async assertCanSubmit(ownerId, submission) {
      const [queued, kept] = await Promise.all([queuedJobs(ownerId), keptJobs(ownerId)]);
      const { queueEntries, jobs, bytes } = submission;
      if (queued.value + queueEntries > env.QUOTA_QUEUED_JOBS) {
        throw new QuotaExceededError(
          queueEntries === 1
            ? `queued-jobs quota reached: ${env.QUOTA_QUEUED_JOBS} jobs waiting; let some finish or cancel them`
            : `queued-jobs quota: this fan-out queues ${queueEntries} tasks, and ${queued.value} of the ${env.QUOTA_QUEUED_JOBS} places are taken; let some finish or split the job`,
        );
      }
      if (kept.value.jobs + jobs > env.QUOTA_JOBS) {
        throw new QuotaExceededError(`job quota reached: ${kept.value.jobs} of ${env.QUOTA_JOBS} jobs kept, and this submission adds ${jobs}; ${keptFor}`);
      }
      if (kept.value.bytes + bytes > env.QUOTA_JOB_BYTES) {
        throw new QuotaExceededError(`job data quota reached: the jobs kept hold ${kept.value.bytes} of ${env.QUOTA_JOB_BYTES} bytes of inputs and results, and this input is ${bytes}; ${keptFor}`);
      }
      queued.value += queueEntries;
      kept.value.jobs += jobs;
      kept.value.bytes += bytes;
    },

    async usage(ownerId) {
      const [queued, kept, stored] = await Promise.all([countQueued(ownerId), readJobUsage(pool, ownerId), countStored(ownerId)]);
      return {
        jobs: { used: kept.jobs, limit: env.QUOTA_JOBS },
        jobBytes: { used: kept.bytes, limit: env.QUOTA_JOB_BYTES },
        queuedJobs: { used: queued, limit: env.QUOTA_QUEUED_JOBS },
        files: { used: stored.files, limit: env.QUOTA_FILES },
        storedBytes: { used: stored.bytes, limit: env.QUOTA_STORED_BYTES },
      };
    },
  };
}
