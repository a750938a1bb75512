import type { Pool } from 'pg';
import { TERMINAL_STATUSES } from '../../contract';
import { ConflictError, NotFoundError } from '../errors';
import type { Logger } from '../logger';
import type { ObjectStore } from '../storage/object-store';

export interface JobRemovalDeps {
  generalPool: Pool;
  store: ObjectStore;
  log: Logger;
}

/** Deleting jobs: one finished job by its owner, or every job finished before the retention period. */
export interface JobRemoval {
  /** NotFoundError for a missing or another owner's job; ConflictError while it is queued or running. */
  remove(ownerId: string, jobId: string): Promise<void>;
  /** Deletes jobs finished more than `retentionDays` ago, their events and result files; returns how many jobs. */
  purge(retentionDays: number): Promise<number>;
}

const PURGE_BATCH = 500;

/**
 * Rows go first (one transaction: job, audit rows, result file row), the result objects
 * after the commit: a crash between leaves an unreferenced object, never a row whose
 * bytes are gone.
 */
export function createJobRemoval({ generalPool, store, log }: JobRemovalDeps): JobRemoval {
  const deleteObjects = async (keys: string[]) => {
    for (const key of keys) {
      try {
        await store.delete(key);
      } catch (error) {
        log.warn({ err: error, key }, 'could not delete a removed job\'s result object');
      }
    }
  };

  return {
    async remove(ownerId, jobId) {
      const client = await generalPool.connect();
      let keys: string[];
      try {
        await client.query('BEGIN');
        const { rows } = await client.query<{ status: string }>('SELECT status FROM jobs WHERE id = $1 AND owner_id = $2 FOR UPDATE', [jobId, ownerId]);
        const job = rows[0];
        if (!job) throw new NotFoundError(`job ${jobId} not found`);
        if (!(TERMINAL_STATUSES as readonly string[]).includes(job.status)) throw new ConflictError(`job ${jobId} is ${job.status}; cancel it first or wait until it finishes`);
        await client.query('DELETE FROM job_events WHERE job_id = $1', [jobId]);
        await client.query('DELETE FROM jobs WHERE id = $1', [jobId]);
        const files = await client.query<{ storage_key: string }>('DELETE FROM files WHERE produced_by_job_id = $1 RETURNING storage_key', [jobId]);
        keys = files.rows.map((row) => row.storage_key);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
      await deleteObjects(keys);
    },

    async purge(retentionDays) {
      let purged = 0;
      for (;;) {
        const { rows } = await generalPool.query<{ storage_key: string | null; jobs: number }>(
          `WITH doomed AS (
             SELECT id FROM jobs
              WHERE status = ANY($2::text[]) AND finished_at < now() - make_interval(days => $1)
              ORDER BY finished_at LIMIT $3 FOR UPDATE SKIP LOCKED
           ), events AS (
             DELETE FROM job_events WHERE job_id IN (SELECT id FROM doomed)
           ), gone AS (
             DELETE FROM jobs WHERE id IN (SELECT id FROM doomed) RETURNING id
           ), outputs AS (
             DELETE FROM files WHERE produced_by_job_id IN (SELECT id FROM gone) RETURNING storage_key
           )
           SELECT (SELECT count(*)::int FROM gone) AS jobs, outputs.storage_key
             FROM (SELECT 1) AS one LEFT JOIN outputs ON true`,
          [retentionDays, TERMINAL_STATUSES, PURGE_BATCH],
        );
        const count = rows[0]?.jobs ?? 0;
        await deleteObjects(rows.flatMap((row) => (row.storage_key ? [row.storage_key] : [])));
        purged += count;
        if (count < PURGE_BATCH) return purged;
      }
    },
  };
}
