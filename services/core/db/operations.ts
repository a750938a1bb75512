import type { Queryable } from './pool';

/**
 * Reads for operators (the `platform` CLI): across owners, unlike the API's queries,
 * which are always scoped to the caller.
 */

export interface FlowSnapshot {
  /** Seconds since the oldest job still queued was accepted (0 when none is queued). */
  oldestQueuedSeconds: number;
  queued: number;
  running: number;
  /** Seconds since the most recent job transition a worker made (start or finish); null when there never was one. */
  lastWorkerTransitionSeconds: number | null;
}

/**
 * Whether jobs move. Reads only the newest audit rows (by primary key) so it stays cheap
 * on a large job_events table.
 */
export async function flowSnapshot(db: Queryable): Promise<FlowSnapshot> {
  const result = await db.query<{ oldest: number | null; queued: number; running: number; last_transition: number | null }>({
    name: 'operations.flow-snapshot',
    text: `SELECT
        (SELECT extract(epoch FROM now() - min(created_at)) FROM jobs WHERE status = 'queued')::float8 AS oldest,
        (SELECT count(*) FROM jobs WHERE status = 'queued')::bigint AS queued,
        (SELECT count(*) FROM jobs WHERE status = 'running')::bigint AS running,
        (SELECT extract(epoch FROM now() - max(at)) FROM (
           SELECT at, to_status FROM job_events ORDER BY id DESC LIMIT 5000
         ) recent WHERE to_status IN ('running', 'succeeded', 'failed'))::float8 AS last_transition`,
  });
  const row = result.rows[0];
  return {
    oldestQueuedSeconds: row?.oldest ?? 0,
    queued: row?.queued ?? 0,
    running: row?.running ?? 0,
    lastWorkerTransitionSeconds: row?.last_transition ?? null,
  };
}

export interface ClockReading {
  /** PostgreSQL's clock minus this host's, in ms. */
  skewMs: number;
  /** Half the round trip: the skew is known to within this. */
  uncertaintyMs: number;
}

/** How far PostgreSQL's clock is from this host's (submits carry a start deadline read on this host's clock). */
export async function readClockSkew(db: Queryable): Promise<ClockReading> {
  const before = Date.now();
  const { rows } = await db.query<{ ms: number }>('SELECT extract(epoch FROM clock_timestamp())::float8 * 1000 AS ms');
  const after = Date.now();
  return { skewMs: (rows[0]?.ms ?? Number.NaN) - (before + after) / 2, uncertaintyMs: (after - before) / 2 };
}
