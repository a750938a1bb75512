import { randomInt } from 'node:crypto';
import type { PoolClient } from 'pg';
import type { Queryable } from './pool';

/**
 * What each owner keeps in the jobs table (migration 0010): jobs, and the bytes of their
 * inputs and results as JSON text. Every statement that inserts or deletes jobs, or stores a
 * result, appends jobUsageCte to add its change in the same statement, so the usage is
 * exactly what the committed rows hold, through crashes and rollbacks alike.
 */
export interface JobUsage {
  jobs: number;
  bytes: number;
}

/** Rows per owner in job_usage. */
export const JOB_USAGE_SHARDS = 16;

/** What a job row counts for, in bytes, as SQL over the jobs table aliased `alias`. */
export function storedBytes(alias: string): string {
  return `COALESCE(${alias}.input_bytes, 0) + COALESCE(${alias}.result_bytes, 0)`;
}

let lastShard = randomInt(JOB_USAGE_SHARDS);

/**
 * The job_usage row a statement adds to: each statement of a process takes the next, so
 * statements of one process in flight together never wait for each other's row lock until
 * commit, and processes starting at random places rarely do.
 */
export function nextUsageShard(): number {
  lastShard = (lastShard + 1) % JOB_USAGE_SHARDS;
  return lastShard;
}

/**
 * A CTE (`job_usage_change`) adding a statement's change to its owners' usage. `changed`
 * names a CTE of that statement with a row per job it changed: `owner_id`, `jobs` (+1 for a
 * job inserted, -1 for one deleted, 0 otherwise) and `bytes` (signed). `shard` is the
 * parameter holding nextUsageShard(). Owners are written in id order, so two statements on
 * one shard wait for each other rather than deadlock.
 */
export function jobUsageCte(changed: string, shard: string): string {
  return `job_usage_change AS (
      INSERT INTO job_usage AS u (owner_id, shard, jobs, bytes)
      SELECT owner_id, ${shard}::smallint, sum(jobs)::bigint, sum(bytes)::bigint FROM ${changed}
      GROUP BY owner_id HAVING sum(jobs) <> 0 OR sum(bytes) <> 0 ORDER BY owner_id
      ON CONFLICT (owner_id, shard) DO UPDATE SET jobs = u.jobs + excluded.jobs, bytes = u.bytes + excluded.bytes
    )`;
}

/**
 * CTEs deleting the jobs `where` selects and taking them off their owners' usage: `gone`
 * (id, owner_id, bytes) holds the deleted rows. `shard`: the parameter holding nextUsageShard().
 */
export function deletedJobsCtes(where: string, shard: string): string {
  return `gone AS (
      DELETE FROM jobs WHERE ${where} RETURNING id, owner_id, ${storedBytes('jobs')} AS bytes
    ), gone_usage AS (
      SELECT owner_id, -1 AS jobs, -bytes AS bytes FROM gone
    ), ${jobUsageCte('gone_usage', shard)}`;
}

export async function readJobUsage(db: Queryable, ownerId: string): Promise<JobUsage> {
  const { rows } = await db.query<{ jobs: string; bytes: string }>({
    name: 'job-usage.read',
    text: 'SELECT COALESCE(sum(jobs), 0)::bigint AS jobs, COALESCE(sum(bytes), 0)::bigint AS bytes FROM job_usage WHERE owner_id = $1',
    values: [ownerId],
  });
  return { jobs: Number(rows[0]?.jobs ?? 0), bytes: Number(rows[0]?.bytes ?? 0) };
}

/** The owners keeping the most job data, most bytes first. */
export async function largestJobUsage(db: Queryable, limit: number): Promise<({ ownerId: string; email: string | null } & JobUsage)[]> {
  const { rows } = await db.query<{ owner_id: string; email: string | null; jobs: string; bytes: string }>({
    name: 'job-usage.largest',
    text: `SELECT u.owner_id, users.email, u.jobs, u.bytes
      FROM (SELECT owner_id, sum(jobs)::bigint AS jobs, sum(bytes)::bigint AS bytes FROM job_usage GROUP BY owner_id) u
      LEFT JOIN users ON users.id = u.owner_id
      WHERE u.jobs <> 0 OR u.bytes <> 0
      ORDER BY u.bytes DESC, u.jobs DESC, u.owner_id LIMIT $1`,
    values: [limit],
  });
  return rows.map((row) => ({ ownerId: row.owner_id, email: row.email, jobs: Number(row.jobs), bytes: Number(row.bytes) }));
}

/**
 * Every owner's usage, counted again from the jobs they keep, in the caller's transaction:
 * the repair for rows deleted or changed by hand. The table lock waits for the statements
 * that have added to the usage to commit, and holds off the rest until this commits; the
 * count then sees exactly the jobs whose change is in the usage it replaces. Returns the
 * owners whose usage changed, with what it was and what it is.
 */
export async function recountJobUsage(client: PoolClient): Promise<{ ownerId: string; was: JobUsage; is: JobUsage }[]> {
  await client.query('LOCK TABLE job_usage IN EXCLUSIVE MODE');
  const totals = 'SELECT owner_id, sum(jobs)::bigint AS jobs, sum(bytes)::bigint AS bytes FROM job_usage GROUP BY owner_id';
  const was = await client.query<{ owner_id: string; jobs: string; bytes: string }>(totals);
  await client.query('DELETE FROM job_usage');
  await client.query(`INSERT INTO job_usage (owner_id, shard, jobs, bytes)
    SELECT owner_id, 0, count(*), sum(${storedBytes('j')}) FROM jobs j GROUP BY owner_id`);
  const is = await client.query<{ owner_id: string; jobs: string; bytes: string }>(totals);
  const usageOf = (row: { jobs: string; bytes: string } | undefined): JobUsage => ({ jobs: Number(row?.jobs ?? 0), bytes: Number(row?.bytes ?? 0) });
  const wasByOwner = new Map(was.rows.map((row) => [row.owner_id, usageOf(row)]));
  const isByOwner = new Map(is.rows.map((row) => [row.owner_id, usageOf(row)]));
  const owners = [...new Set([...wasByOwner.keys(), ...isByOwner.keys()])].sort();
  return owners.flatMap((ownerId) => {
    const before = wasByOwner.get(ownerId) ?? { jobs: 0, bytes: 0 };
    const after = isByOwner.get(ownerId) ?? { jobs: 0, bytes: 0 };
    return before.jobs === after.jobs && before.bytes === after.bytes ? [] : [{ ownerId, was: before, is: after }];
  });
}
