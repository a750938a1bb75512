import { MIGRATION_LOCK_KEY } from '../../core/db/migrate';
import type { Runtime } from '../../core/runtime';
import * as parse from '../args';
import type { RuntimeAction } from '../context';
import { printJson, printTable } from '../output';

interface SessionRow {
  pid: number;
  state: string | null;
  waiting_seconds: number | null;
  transaction_seconds: number | null;
  blocked_by: number[];
  holds_migration_lock: boolean;
  application: string;
  query: string;
}

/**
 * Sessions that hold the migration lock, wait for a lock, or block someone, with how long
 * and on what: what a stuck `platform migrate` is waiting for, and who to cancel.
 */
export async function dbLocks(core: Runtime, options: { json?: boolean }): Promise<number> {
  const { rows } = await core.generalPool.query<SessionRow>(
    `WITH sessions AS (
       SELECT a.pid, a.state, a.application_name AS application, left(regexp_replace(a.query, '\\s+', ' ', 'g'), 120) AS query,
              extract(epoch FROM now() - a.state_change)::float8 AS waiting_seconds,
              extract(epoch FROM now() - a.xact_start)::float8 AS transaction_seconds,
              pg_blocking_pids(a.pid) AS blocked_by,
              EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory' AND l.granted
                        AND ((l.classid::bigint << 32) | l.objid::bigint) = $1) AS holds_migration_lock
         FROM pg_stat_activity a
        WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid())
     SELECT * FROM sessions s
      WHERE s.holds_migration_lock OR cardinality(s.blocked_by) > 0
         OR s.pid IN (SELECT unnest(blocked_by) FROM sessions)
      ORDER BY s.transaction_seconds DESC NULLS LAST`,
    [MIGRATION_LOCK_KEY],
  );
  if (options.json) {
    printJson({ sessions: rows });
    return 0;
  }
  printTable(
    rows.map((r) => ({
      pid: r.pid,
      state: r.state,
      migration: r.holds_migration_lock ? 'holds lock' : '',
      'blocked by': r.blocked_by.join(',') || '',
      'in transaction': r.transaction_seconds === null ? '' : `${r.transaction_seconds.toFixed(0)} s`,
      application: r.application,
      query: r.query,
    })),
    ['pid', 'state', 'migration', 'blocked by', 'in transaction', 'application', 'query'],
  );
  return 0;
}

interface ConnectionGroup {
  application: string;
  user: string | null;
  client: string;
  state: string;
  count: number;
  oldest_transaction_seconds: number | null;
  /** Up to five, the oldest transaction first: what `db cancel` takes. */
  pids: number[];
}

/**
 * Who holds the server's connections: client sessions grouped by application, user, client
 * address and state, against max_connections. PostgresConnectionsNearLimit counts every
 * client, and the platform's own pools are only part of them (platform_db_pool_connections):
 * this names the rest (an operator's psql, a script, a leaking release) and the pids to end.
 * A role without pg_read_all_stats sees other roles' sessions without their state.
 */
export async function dbConnections(core: Runtime, options: { json?: boolean }): Promise<number> {
  const [{ rows: groups }, { rows: limits }] = await Promise.all([
    core.generalPool.query<ConnectionGroup>(
      `SELECT coalesce(nullif(a.application_name, ''), '(none)') AS application, a.usename AS "user",
              coalesce(host(a.client_addr), 'local socket') AS client, coalesce(a.state, '(hidden)') AS state,
              count(*)::int AS count,
              max(extract(epoch FROM now() - a.xact_start))::float8 AS oldest_transaction_seconds,
              (array_agg(a.pid ORDER BY a.xact_start NULLS LAST, a.pid))[1:5] AS pids
         FROM pg_stat_activity a
        WHERE a.backend_type = 'client backend'
        GROUP BY 1, 2, 3, 4
        ORDER BY count(*) DESC, 1, 4`,
    ),
    core.generalPool.query<{ max_connections: number; reserved: number }>(
      "SELECT current_setting('max_connections')::int AS max_connections, current_setting('superuser_reserved_connections')::int AS reserved",
    ),
  ]);
  const { max_connections: maxConnections, reserved } = limits[0] ?? { max_connections: 0, reserved: 0 };
  const inUse = groups.reduce((sum, group) => sum + group.count, 0);
  if (options.json) {
    printJson({ inUse, maxConnections, superuserReserved: reserved, groups });
    return 0;
  }
  process.stdout.write(`${inUse} of max_connections ${maxConnections} in use by clients (${reserved} of them kept for superusers)\n\n`);
  printTable(
    groups.map((g) => ({
      count: g.count,
      application: g.application,
      user: g.user ?? '',
      client: g.client,
      state: g.state,
      'oldest transaction': g.oldest_transaction_seconds === null ? '' : `${Math.max(0, g.oldest_transaction_seconds).toFixed(0)} s`,
      pids: g.pids.join(',') + (g.count > g.pids.length ? ',…' : ''),
    })),
    ['count', 'application', 'user', 'client', 'state', 'oldest transaction', 'pids'],
  );
  return 0;
}

/**
 * Cancels a client session's current query (or ends the session with --terminate). Only a
 * client's session: PostgreSQL's own processes (the logical replication launcher, autovacuum,
 * walsenders) are in pg_stat_activity too, and a mistyped pid must not signal one of them.
 * A session running no query (idle, or idle in a transaction whose locks block others) has
 * nothing to cancel: PostgreSQL would accept the signal and change nothing, so it is not
 * sent, and the answer says what would end the session's locks.
 */
export function dbCancel(pidArg: string, options: { terminate?: boolean; json?: boolean }): RuntimeAction {
  const pid = parse.pid(pidArg);
  const fn = options.terminate ? 'pg_terminate_backend' : 'pg_cancel_backend';
  return async (core) => {
    const { rows } = await core.generalPool.query<{ backend_type: string | null; state: string | null; done: boolean | null }>(
      `SELECT backend_type, state, CASE WHEN backend_type = 'client backend' AND ($2 OR state = 'active') THEN ${fn}(pid) END AS done FROM pg_stat_activity WHERE pid = $1`,
      [pid, options.terminate === true],
    );
    const session = rows[0];
    const done = session?.done === true;
    const client = session?.backend_type === 'client backend';
    const idle = client && !options.terminate && session?.state !== 'active';
    if (options.json) {
      printJson({ pid, action: options.terminate ? 'terminate' : 'cancel', done, found: session !== undefined, ...(session && !client ? { backendType: session.backend_type } : {}), ...(idle ? { state: session?.state } : {}) });
    } else if (!session) process.stdout.write(`no session ${pid}\n`);
    else if (!client) process.stdout.write(`${pid} is PostgreSQL's own ${session.backend_type ?? 'process'}, not a client's session: left alone\n`);
    else if (idle) process.stdout.write(`session ${pid} runs no query (${session.state ?? 'state unknown'}): nothing to cancel; its locks last until it ends: platform db cancel ${pid} --terminate\n`);
    else process.stdout.write(done ? `${options.terminate ? 'terminated' : 'cancelled the query of'} session ${pid}\n` : `could not signal session ${pid} (not allowed?)\n`);
    return done ? 0 : 1;
  };
}
