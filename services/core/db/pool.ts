import { Pool, types } from 'pg';
import type { Env } from '../../contract';
import type { Logger } from '../logger';

// BIGINT counts would otherwise arrive as strings; ours stay far below 2^53.
types.setTypeParser(types.builtins.INT8, (value) => Number(value));

export type DbEnv = Pick<Env, 'DATABASE_URL' | 'DATABASE_POOL_MAX' | 'DATABASE_SSL'>;

export function createPool(env: DbEnv, log?: Logger, applicationName = 'platform'): Pool {
  const pool = new Pool({
    connectionString: env.DATABASE_URL,
    max: env.DATABASE_POOL_MAX,
    application_name: applicationName,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    // A statement that runs this long is stuck (lock wait, lost server); fail it instead of hanging a request.
    statement_timeout: 30_000,
    ssl: env.DATABASE_SSL === 'disable' ? undefined : { rejectUnauthorized: env.DATABASE_SSL === 'verify-full' },
  });
  // An idle client losing its server (Postgres restart) emits here; without a listener the process dies.
  pool.on('error', (error) => log?.warn({ err: error }, 'idle PostgreSQL connection lost'));
  return pool;
}
