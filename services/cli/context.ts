import type { Redis } from 'ioredis';
import { parseEnv, WorkerEnvSchema, type WorkerEnv } from '../contract';
import { createLogger } from '../core/logger';
import { createRuntime, type Runtime } from '../core/runtime';
import { DependencyUnavailableError } from './output';

const REDIS_CONNECT_WAIT_MS = 3_000;

/**
 * What a command does once connected. A command is a function of its flags that returns
 * one of these, so its flags are parsed (and a bad one refused) before anything connects.
 */
export type RuntimeAction<T = number> = (core: Runtime) => Promise<T>;

/**
 * The data stores a command cannot do its work without. Each is asked once before the
 * command runs; one that does not answer ends the command with exit status 1, saying which
 * and why, instead of leaving it to hang (BullMQ waits for a Redis connection without a
 * deadline) or to report nothing done as if nothing were left to do.
 */
export type Dependency = 'postgres' | 'redis';

export interface RuntimeOptions {
  /** Default: PostgreSQL, where every command but doctor reads or writes. Doctor asks for none: it reports each itself. */
  needs?: readonly Dependency[];
}

/**
 * Resolves when the connection is ready, fails to connect, or the wait is over. A refused
 * connection will not come up within the wait, so a command that does not need Redis does
 * not wait it out; one that does is told by requireAnswers why Redis is unavailable.
 */
function connected(connection: Redis, waitMs: number): Promise<void> {
  if (connection.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      connection.off('ready', done);
      connection.off('error', done);
      resolve();
    };
    const timer = setTimeout(done, waitMs);
    connection.once('ready', done);
    connection.once('error', done);
  });
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The runtime with a Redis check that says why it failed. A PING on a connection that cannot
 * connect fails with "Reached the max retries per request limit"; the connection's own last
 * error says why (connect ECONNREFUSED, WRONGPASS).
 */
function explainingRedisFailures(core: Runtime): Runtime {
  let lastConnectionError: string | undefined;
  core.redis.client.on('error', (error: Error) => (lastConnectionError = error.message));
  core.redis.client.on('ready', () => (lastConnectionError = undefined));
  const redis = () =>
    core.checks.redis().catch((error: unknown) => {
      throw new Error(lastConnectionError ?? message(error), { cause: error });
    });
  return { ...core, checks: { ...core.checks, redis } };
}

async function requireAnswers(core: Runtime, needs: readonly Dependency[]): Promise<void> {
  const problems = await Promise.all([
    needs.includes('postgres') ? core.checks.postgres().then(() => undefined, (error: unknown) => `PostgreSQL is unavailable: ${message(error)}`) : undefined,
    needs.includes('redis')
      ? core.checks.redis().then(
          // The queue's own connection is the one BullMQ would wait on, however long.
          () => (core.redis.producer.status === 'ready' ? undefined : `Redis is unavailable: the queue's connection is ${core.redis.producer.status}`),
          (error: unknown) => `Redis is unavailable: ${message(error)}`,
        )
      : undefined,
  ]);
  const found = problems.filter((problem): problem is string => problem !== undefined);
  if (found.length > 0) throw new DependencyUnavailableError(`${found.join('; ')} (platform doctor checks each part)`);
}

/**
 * A command whose work is in Redis that failed after Redis had answered its first check:
 * when Redis no longer answers now, that is why (its error, "Command timed out", says
 * nothing of Redis), and it is reported as Redis being unavailable, like a Redis that was
 * away from the start, with what is known of the work done. Any other failure is the
 * command's own and is handed on as it was.
 */
async function explainedMidwayFailure(core: Runtime, needs: readonly Dependency[], error: unknown): Promise<unknown> {
  if (!needs.includes('redis') || error instanceof DependencyUnavailableError) return error;
  const redisAnswers = await core.checks.redis().then(
    () => true,
    () => false,
  );
  if (redisAnswers) return error;
  return new DependencyUnavailableError(
    `Redis is unavailable: it stopped answering during the command (${message(error)}); the queue commands and reconcile are safe to run again once platform doctor says Redis is reachable`,
  );
}

/**
 * The settings shared with the services. A bad or missing variable is an EnvError, which the
 * CLI reports like any other failure (as JSON with --json), naming the variable, never its value.
 */
function cliEnv(): WorkerEnv {
  return { ...parseEnv(process.env, WorkerEnvSchema), SERVICE_NAME: process.env.SERVICE_NAME || 'cli' };
}

/**
 * Runs a command against the platform's PostgreSQL and Redis and always closes the
 * connections afterwards, so a CLI call never hangs on an open socket. Logs go to stderr
 * (warnings and worse) so stdout stays clean for tables and JSON.
 */
export async function withRuntime<T>(action: RuntimeAction<T>, options: RuntimeOptions = {}): Promise<T> {
  const env = cliEnv();
  // At LOG_LEVEL=debug or trace, whoever runs the command is debugging it: stacks stay.
  const verbose = env.LOG_LEVEL === 'debug' || env.LOG_LEVEL === 'trace';
  const log = createLogger({ service: 'cli', level: env.LOG_LEVEL === 'info' ? 'warn' : env.LOG_LEVEL, destination: process.stderr, errorsWithoutStacks: !verbose });
  const core = explainingRedisFailures(await createRuntime(env, { service: 'cli', log, logRedisOutages: false }));
  try {
    // The enqueue connection fails fast instead of queueing commands while it connects (right for
    // the API, wrong for a command issued the moment the CLI starts): give both a moment to come up.
    // Closing one still connecting would also fail the maxmemory-policy read it has queued, with a warning.
    await Promise.all([connected(core.redis.producer, REDIS_CONNECT_WAIT_MS), connected(core.redis.client, REDIS_CONNECT_WAIT_MS)]);
    const needs = options.needs ?? ['postgres'];
    await requireAnswers(core, needs);
    try {
      return await action(core);
    } catch (error) {
      throw await explainedMidwayFailure(core, needs, error);
    }
  } finally {
    await core.close();
  }
}
