import { loadEnv } from '../core/config';
import { createLogger } from '../core/logger';
import { createPlatformCore, type PlatformCore } from '../core/platform';

/**
 * Runs a command against the platform's PostgreSQL and Redis and always closes the
 * connections afterwards, so a CLI call never hangs on an open socket. Logs go to stderr
 * (warnings and worse) so stdout stays clean for tables and JSON.
 */
export async function withPlatform<T>(action: (core: PlatformCore) => Promise<T>): Promise<T> {
  const env = loadEnv('cli');
  const log = createLogger({ service: 'cli', level: env.LOG_LEVEL === 'info' ? 'warn' : env.LOG_LEVEL, destination: process.stderr });
  const core = await createPlatformCore(env, { service: 'cli', log });
  try {
    return await action(core);
  } finally {
    await core.close();
  }
}
