import path from 'node:path';
import { EnvError, EnvSchema, PORTS, WorkerEnvSchema, parseEnv } from '../contract';
import { apiEnvironment, appEnvironment, workerEnvironment, type RunProvided } from './app-env';

/**
 * The variables the supervisor itself reads, validated with the contract's own rules.
 * DATABASE_URL, REDIS_URL, S3_BUCKET and OBJECT_STORE_DIR are optional here: unset, the
 * local run provides that part itself.
 */
const LocalEnvSchema = EnvSchema.pick({
  DATABASE_URL: true,
  DATABASE_SSL: true,
  REDIS_URL: true,
  S3_BUCKET: true,
  KEY_ENCRYPTION_SECRET: true,
  SHUTDOWN_GRACE_MS: true,
  LOG_LEVEL: true,
})
  .partial({ DATABASE_URL: true, REDIS_URL: true, KEY_ENCRYPTION_SECRET: true })
  // Unset means "the contract's port, or a free one when that is taken" (start.ts): no
  // default here, so the run can tell a port the user chose from one it may move. Likewise
  // the object store's directory: unset, it lives under .data/.
  .extend({
    PORT: EnvSchema.shape.PORT.unwrap().optional(),
    WORKER_METRICS_PORT: EnvSchema.shape.WORKER_METRICS_PORT.unwrap().optional(),
    OBJECT_STORE_DIR: EnvSchema.shape.OBJECT_STORE_DIR.unwrap().optional(),
  });

export type LocalEnv = ReturnType<typeof LocalEnvSchema.parse>;

export class LocalEnvError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = this.constructor.name;
  }
}

/** Settings of the local run that contradict each other, though each is valid alone. */
function localContradictions(env: LocalEnv): EnvError['issues'] {
  const issues: EnvError['issues'] = [];
  if (env.PORT !== undefined && env.PORT === env.WORKER_METRICS_PORT) {
    issues.push({ variable: 'WORKER_METRICS_PORT', message: `must differ from PORT (both ${env.PORT}): the API and the worker listen side by side on this machine` });
  }
  if (env.DATABASE_URL === undefined && env.DATABASE_SSL !== 'disable') {
    issues.push({ variable: 'DATABASE_SSL', message: 'is set but DATABASE_URL is not: the embedded PostgreSQL speaks plain TCP on 127.0.0.1. Set DATABASE_URL too, or unset DATABASE_SSL' });
  }
  if (env.S3_BUCKET !== undefined && env.OBJECT_STORE_DIR !== undefined) {
    issues.push({ variable: 'OBJECT_STORE_DIR', message: 'is set but so is S3_BUCKET: files go to S3, so it would be ignored. Unset one of them' });
  }
  return issues;
}

/**
 * The API's and the worker's environments as the run would start them, with stand-ins for
 * what the run has not made yet (its database, Redis and secret): checked before anything
 * starts, so a bad API-only setting stops the run at once instead of a crash loop over a
 * started database.
 */
function appEnvironmentIssues(source: NodeJS.ProcessEnv, env: LocalEnv): EnvError['issues'] {
  const standIns: RunProvided = {
    databaseUrl: env.DATABASE_URL ?? 'postgres://postgres:stand-in@127.0.0.1:5432/platform',
    redisUrl: env.REDIS_URL ?? 'redis://default:stand-in@127.0.0.1:6379',
    keyEncryptionSecret: env.KEY_ENCRYPTION_SECRET ?? 'stand-in'.repeat(4),
    objectStoreDir: env.S3_BUCKET ? undefined : objectStoreDirectory(env, path.resolve('.data', 'objects')),
  };
  const appEnv = appEnvironment(source, standIns);
  const issues = new Map<string, string>();
  const check = (run: () => unknown) => {
    try {
      run();
    } catch (error) {
      if (!(error instanceof EnvError)) throw error;
      for (const issue of error.issues) if (!issues.has(issue.variable)) issues.set(issue.variable, issue.message);
    }
  };
  check(() => parseEnv(apiEnvironment(appEnv, env.PORT ?? PORTS.api), EnvSchema));
  check(() => parseEnv(workerEnvironment(appEnv, env.WORKER_METRICS_PORT ?? PORTS.workerMetrics), WorkerEnvSchema));
  return [...issues].map(([variable, message]) => ({ variable, message }));
}

/** Where the filesystem object store lives: OBJECT_STORE_DIR when set (relative to the checkout), else under .data/. */
export function objectStoreDirectory(env: Pick<LocalEnv, 'OBJECT_STORE_DIR'>, underData: string): string {
  return env.OBJECT_STORE_DIR ? path.resolve(env.OBJECT_STORE_DIR) : underData;
}

/**
 * Parses the supervisor's variables and checks what the API and the worker will be given;
 * the error names each bad variable, never its value.
 */
export function parseLocalEnv(source: NodeJS.ProcessEnv): LocalEnv {
  let env: LocalEnv;
  try {
    env = parseEnv(source, LocalEnvSchema);
  } catch (error) {
    if (!(error instanceof EnvError)) throw error;
    throw new LocalEnvError(error.issues.map(describe));
  }
  const issues = [...localContradictions(env), ...appEnvironmentIssues(source, env)];
  if (issues.length > 0) throw new LocalEnvError(issues.map(describe));
  return env;
}

function describe(issue: EnvError['issues'][number]): string {
  return `environment variable ${issue.variable} ${issue.message}`;
}
