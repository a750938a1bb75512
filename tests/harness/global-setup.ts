import { COMPILED_ROOT_ENV, removeTranspiled, transpileForChildren } from './compiled-children';
import { startPostgres, type PostgresServer } from './postgres';
import { startRedis, type RedisServer } from './redis';
import { SHARED_ENV } from './shared';
import { removeOrphanedTempDirs } from './temp-dirs';

export interface SharedServers {
  postgres: PostgresServer;
  redis: RedisServer;
}

/** Jest runs globalSetup and globalTeardown in the same process; this is how the handles cross over. */
export const SHARED_SERVERS_KEY = '__platformKitSharedServers';

/**
 * Starts one PostgreSQL and one Redis for the whole jest run and publishes their URLs in
 * the environment the test workers inherit. Tests take isolated slices of them through
 * `useSharedServices()`; fault tests start private servers instead.
 */
export default async function globalSetup(): Promise<void> {
  removeOrphanedTempDirs();
  const [postgres, redis, compiled] = await Promise.allSettled([startPostgres(), startRedis(), transpileForChildren()]);
  if (postgres.status === 'rejected' || redis.status === 'rejected') {
    if (postgres.status === 'fulfilled') await postgres.value.destroy();
    if (redis.status === 'fulfilled') await redis.value.destroy();
    if (compiled.status === 'fulfilled') await removeTranspiled(compiled.value);
    throw postgres.status === 'rejected' ? postgres.reason : (redis as PromiseRejectedResult).reason;
  }
  const servers: SharedServers = { postgres: postgres.value, redis: redis.value };
  (globalThis as Record<string, unknown>)[SHARED_SERVERS_KEY] = servers;
  process.env[SHARED_ENV.postgresUrl] = servers.postgres.url;
  process.env[SHARED_ENV.redisUrl] = servers.redis.url;
  // Children then run from the sources, only slower.
  if (compiled.status === 'fulfilled') process.env[COMPILED_ROOT_ENV] = compiled.value;
  else console.warn(`test children run from the TypeScript sources: transpiling them failed (${String(compiled.reason)})`);
}
