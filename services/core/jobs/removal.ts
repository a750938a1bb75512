import type { Pool } from 'pg';
import { deletedJobsCtes, nextUsageShard } from '../db/job-usage';
import { inTransaction } from '../db/transaction';
import { TERMINAL_STATUSES } from '../../contract';
import { ConflictError, NotFoundError } from '../errors';
import type { Logger } from '../logger';
import type { ObjectStore } from '../storage/object-store';

export interface JobRemovalDeps {
  generalPool: Pool;
  store: ObjectStore;
  log: Logger;
}

/** Deleting jobs: one finished job (with its tasks when it fans out) by its owner, or every job finished before the retention period. */
export interface JobRemoval {
  /**
   * NotFoundError for a missing or another owner's job. ConflictError while it is queued,
   * running or waiting, while a fan-out job has unfinished tasks, and for a task: a task
   * goes only with its fan-out job, so the job's counts always add up to its tasks. `log`:
   * the caller's (the API passes its request's).
   */
  remove(ownerId: string, jobId: string, log?: Logger): Promise<void>;
  /**
   * Deletes jobs finished more than `retentionDays` ago, their events and result files; a
   * fan-out job goes with all its tasks once none is unfinished, a task never alone.
   * Returns how many jobs, tasks included.
   */
  purge(retentionDays: number): Promise<number>;
}

const PURGE_BATCH = 500;

/**
 * Rows go first (one transaction: job, audit rows, result file row), the result objects
 * after the commit: a crash between leaves an unreferenced object, never a row whose
 * bytes are gone.
 */
export function createJobRemoval({ generalPool, store, log }: JobRemovalDeps): JobRemoval {
  const deleteObjects = async (keys: string[], caller: Logger = log) => {
    for (const key of keys) {
      try {
        await store.delete(key);
      } catch (error) {
        caller.warn({ err: error, key }, 'could not delete a removed job\'s result object');
      }
    }
  };

  return {
    async remove(ownerId, jobId, caller) {
      const keys = await inTransaction(generalPool, async (client) => {
        const { rows } = await client.query<{ status: string; parent_id: string | null }>('SELECT status, parent_id FROM jobs WHERE id = $1 AND owner_id = $2 FOR UPDATE', [jobId, ownerId]);
        const job = rows[0];
        if (!job) throw new NotFoundError(`job ${jobId} not found`);
        if (job.parent_id !== null) throw new ConflictError(`job ${jobId} is a task of fan-out job ${job.parent_id}; tasks are deleted with their fan-out job, once it has finished`);
        if (!(TERMINAL_STATUSES as readonly string[]).includes(job.status)) throw new ConflictError(`job ${jobId} is ${job.status}; cancel it first or wait until it finishes`);
        // Locked: every statement that moves a task writes this row, so none can start one now.
        const fanOut = await client.query<{ unfinished: number }>('SELECT queued + running AS unfinished FROM job_fanouts WHERE job_id = $1 FOR UPDATE', [jobId]);
        const unfinished = fanOut.rows[0]?.unfinished ?? 0;
        if (unfinished > 0) throw new ConflictError(`fan-out job ${jobId} still has ${unfinished} unfinished task(s); wait until they finish`);
        await client.query('DELETE FROM job_events WHERE job_id = $1 OR job_id IN (SELECT id FROM jobs WHERE parent_id = $1)', [jobId]);
        // The tasks, then the job (its job_fanouts row goes with it, ON DELETE CASCADE), then the files they produced, which they referenced.
        const tasks = await client.query<{ id: string }>(`WITH ${deletedJobsCtes('parent_id = $1', '$2')} SELECT id FROM gone`, [jobId, nextUsageShard()]);
        await client.query(`WITH ${deletedJobsCtes('id = $1', '$2')} SELECT id FROM gone`, [jobId, nextUsageShard()]);
        const files = await client.query<{ storage_key: string }>('DELETE FROM files WHERE produced_by_job_id = ANY($1::uuid[]) RETURNING storage_key', [
          [jobId, ...tasks.rows.map((task) => task.id)],
        ]);
        return files.rows.map((row) => row.storage_key);
      });
      await deleteObjects(keys, caller);
    },

    async purge(retentionDays) {
      let purged = 0;
      for (;;) {
        const { rows } = await generalPool.query<{ storage_key: string | null; jobs: number; roots: number }>(
          `WITH doomed AS (
             SELECT j.id FROM jobs j
              WHERE j.parent_id IS NULL AND j.status = ANY($2::text[]) AND j.finished_at < now() - make_interval(days => $1)
                AND NOT EXISTS (SELECT 1 FROM job_fanouts f WHERE f.job_id = j.id AND f.queued + f.running > 0)
              ORDER BY j.finished_at LIMIT $3 FOR UPDATE OF j SKIP LOCKED
           ), doomed_all AS (
             SELECT id FROM doomed UNION ALL SELECT t.id FROM jobs t WHERE t.parent_id IN (SELECT id FROM doomed)
           ), events AS (
             DELETE FROM job_events WHERE job_id IN (SELECT id FROM doomed_all)
           ), ${deletedJobsCtes('id IN (SELECT id FROM doomed_all)', '$4')}, outputs AS (
             DELETE FROM files WHERE produced_by_job_id IN (SELECT id FROM gone) RETURNING storage_key
           )
           SELECT (SELECT count(*)::int FROM gone) AS jobs, (SELECT count(*)::int FROM doomed) AS roots, outputs.storage_key
             FROM (SELECT 1) AS one LEFT JOIN outputs ON true`,
          [retentionDays, TERMINAL_STATUSES, PURGE_BATCH, nextUsageShard()],
        );
        await deleteObjects(rows.flatMap((row) => (row.storage_key ? [row.storage_key] : [])));
        purged += rows[0]?.jobs ?? 0;
        if ((rows[0]?.roots ?? 0) < PURGE_BATCH) return purged;
      }
    },
  };
}
