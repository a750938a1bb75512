import { COMPILED_ROOT_ENV, removeTranspiled } from './compiled-children';
import { SHARED_SERVERS_KEY, type SharedServers } from './global-setup';
import { SHARED_ENV } from './shared';

export default async function globalTeardown(): Promise<void> {
  await removeTranspiled(process.env[COMPILED_ROOT_ENV]);
  delete process.env[COMPILED_ROOT_ENV];
  const servers = (globalThis as Record<string, unknown>)[SHARED_SERVERS_KEY] as SharedServers | undefined;
  if (!servers) return;
  await Promise.all([servers.postgres.destroy(), servers.redis.destroy()]);
  delete (globalThis as Record<string, unknown>)[SHARED_SERVERS_KEY];
  delete process.env[SHARED_ENV.postgresUrl];
  delete process.env[SHARED_ENV.redisUrl];
}
