import { Pool, types, type PoolClient } from 'pg';
import type { Env } from '../../contract';
import type { Logger } from '../logger';
import { ClosingClient } from './client';
import { databaseSsl } from './tls';

// BIGINT counts would otherwise arrive as strings; ours stay far below 2^53.
types.setTypeParser(types.builtins.INT8, (value) => Number(value));

/** What runs a statement: a pool (a connection of its for the one statement) or a client checked out of one (a transaction). */
export type Queryable = Pool | PoolClient;

export type DbEnv = Pick<Env, 'DATABASE_URL' | 'DATABASE_POOL_MAX' | 'DATABASE_SSL'>;

/**
 * Connections of the batch pool. Its users bound their statements in flight: the submit
 * batcher runs 2 INSERTs at once, the transition writer 1 write and 2 delivery reads.
 */
const BATCH_POOL_MAX = 4;

/**
 * How long a statement may run on the server, and how long its caller waits for the answer.
 * The server gives up first, so a statement that is only slow comes back as the server's
 * own timeout error; the client's wait ends a statement the server never answers (a hung
 * or partitioned host), and the pool then drops that connection.
 */
export interface StatementBounds {
  statementTimeoutMs: number;
  answerWithinMs: number;
}

/** Background work and the CLI: sweeps, retention, admin walks. */
export const BACKGROUND_BOUNDS: StatementBounds = { statementTimeoutMs: 15_000, answerWithinMs: 20_000 };

/**
 * Statements made while an HTTP client waits: a read waits for PostgreSQL as long as a
 * submit waits for its commit (5 s), then the request is answered 503 with Retry-After.
 */
export const REQUEST_BOUNDS: StatementBounds = { statementTimeoutMs: 4_000, answerWithinMs: 5_000 };

/**
 * Every call to PostgreSQL is bounded: connecting (5 s), a statement on the server
 * (`statement_timeout`), and the wait for its answer on the client (`query_timeout`, which
 * also ends a wait on a server that stopped answering without closing the connection).
 * TCP keep-alive notices a peer that vanished while a connection sat idle.
 */
function newPool(
  env: DbEnv,
  log: Logger | undefined,
  settings: { applicationName: string; max: number; options: string } & StatementBounds,
): Pool {
  const pool = new Pool({
    Client: ClosingClient,
    connectionString: env.DATABASE_URL,
    max: settings.max,
    application_name: settings.applicationName,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    statement_timeout: settings.statementTimeoutMs,
    query_timeout: settings.answerWithinMs,
    options: settings.options,
    ssl: databaseSsl(env.DATABASE_SSL),
  });
  // An idle client losing its server (Postgres restart) emits here; without a listener the process dies.
  pool.on('error', (error) => log?.warn({ err: error }, 'idle PostgreSQL connection lost'));
  // A checked-out client has no pool listener: one that loses its server between statements (a transaction
  // waiting on other work, the relay's sweep holding its lock) would emit an unhandled 'error' and end the
  // process. Its next statement fails instead, and the pool drops it on release.
  pool.on('connect', (client) => client.on('error', (error) => log?.warn({ err: error }, 'PostgreSQL connection lost while in use')));
  return pool;
}

/**
 * The general pool: every statement but the hot batch statements (reads, listings,
 * cancels, the relay's sweep, admin and CLI). Our statements are prepared once per
 * connection; with the default plan cache mode a connection settles on a generic plan after
 * five runs, made while jobs was tiny: a sequential scan that then stays for the
 * connection's life as the table grows. These statements have optional filters whose best
 * plan depends on the values, so they are planned on each run.
 */
export function createGeneralPool(env: DbEnv, log?: Logger, applicationName = 'pk', bounds: StatementBounds = BACKGROUND_BOUNDS): Pool {
  return newPool(env, log, {
    applicationName,
    max: env.DATABASE_POOL_MAX,
    options: '-c plan_cache_mode=force_custom_plan',
    ...bounds,
  });
}

/**
 * The pool for the hot batch statements (insert of a submit batch, run-state read,
 * transition write), which run hundreds of times a second and reach jobs by primary key
 * only. Planning their CTEs on every run cost PostgreSQL about a quarter of its CPU per job,
 * so their plan is made once per connection; sequential scans are disabled here so that
 * plan uses the primary key even when it is made while jobs is empty and keeps using it
 * as the table grows. Statements that need any other access path do not belong here.
 */
export function createBatchPool(env: DbEnv, log?: Logger, applicationName = 'pk'): Pool {
  return newPool(env, log, {
    applicationName: `${applicationName}-batches`,
    max: BATCH_POOL_MAX,
    options: '-c plan_cache_mode=force_generic_plan -c enable_seqscan=off',
    // These statements take milliseconds; one that takes seconds waits on a lock or a stopped server.
    statementTimeoutMs: 10_000,
    answerWithinMs: 15_000,
  });
}
