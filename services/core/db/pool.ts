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
    // Our statements are prepared once per connection. With the default plan cache mode a
    // connection settles on a generic plan after five runs, chosen while jobs was tiny: a
    // sequential scan that then stays for the connection's life as the table grows (seen as
    // PostgreSQL burning a core on a few hundred jobs/s). Planning each run costs far less.
    options: '-c plan_cache_mode=force_custom_plan',
    ssl: env.DATABASE_SSL === 'disable' ? undefined : { rejectUnauthorized: env.DATABASE_SSL === 'verify-full' },
  });
  // An idle client losing its server (Postgres restart) emits here; without a listener the process dies.
  pool.on('error', (error) => log?.warn({ err: error }, 'idle PostgreSQL connection lost'));
  return pool;
}
