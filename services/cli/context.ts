import type { Redis } from 'ioredis';
import { loadEnv } from '../core/config';
import { createLogger } from '../core/logger';
import { createRuntime, type Runtime } from '../core/runtime';

const REDIS_CONNECT_WAIT_MS = 3_000;

/**
 * What a command does once connected. A command is a function of its flags that returns
 * one of these, so its flags are parsed (and a bad one refused) before anything connects.
 */
export type RuntimeAction = (core: Runtime) => Promise<number>;

/** Resolves when the connection is ready or the wait is over; a Redis that stays down is reported by the command itself. */
function connected(connection: Redis, waitMs: number): Promise<void> {
  if (connection.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      connection.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, waitMs);
    connection.once('ready', done);
  });
}

/**
 * Runs a command against the platform's PostgreSQL and Redis and always closes the
 * connections afterwards, so a CLI call never hangs on an open socket. Logs go to stderr
 * (warnings and worse) so stdout stays clean for tables and JSON.
 */
export async function withRuntime<T>(action: (core: Runtime) => Promise<T>): Promise<T> {
  const env = loadEnv('cli');
  const log = createLogger({ service: 'cli', level: env.LOG_LEVEL === 'info' ? 'warn' : env.LOG_LEVEL, destination: process.stderr });
  const core = await createRuntime(env, { service: 'cli', log });
  // The enqueue connection fails fast instead of queueing commands while it connects (right for
  // the API, wrong for a command issued the moment the CLI starts): give it a moment to come up.
  await connected(core.redis.producer, REDIS_CONNECT_WAIT_MS);
  try {
    return await action(core);
  } finally {
    await core.close();
  }
}
