import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Command, Option } from 'commander';
import { HEALTH_PROBES, PATHS, PORTS } from '../contract';
import { createLogger, redactUrl, type Logger } from '../core/logger';
import { describeLockHolders, runMigrations } from '../core/db/migrate';
import { ApiPort } from './api-port';
import { isPortFree, isPortUsable, reservePort } from './free-port';
import { apiEnvironment, appEnvironment, workerEnvironment } from './app-env';
import { LocalEnvError, objectStoreDirectory, parseLocalEnv, type LocalEnv } from './env';
import { LocalRunError } from './errors';
import { MergedLog } from './log-stream';
import { initialiseLocalCluster, PostgresCluster, postgresLineLevel, runnableEmbeddedPostgresBinDir } from './postgres';
import { isRoot, lookupSystemUser } from './child';
import { AppProcess, Supervisor, type HealthProbes } from './processes';
import { observe } from './prometheus';
import { findRedisServer, parseRedisLine, RedisServer } from './redis';
import { RestartPolicy } from './restart-policy';
import { LocalState } from './state';

/**
 * `npm start`: the whole platform on this machine with no configuration (DESIGN §6).
 * PostgreSQL (embedded), Redis (a private redis-server) and the object store (a
 * directory) keep their data under `.data/` in the working directory; DATABASE_URL,
 * REDIS_URL and S3_BUCKET switch each part to an external one. Then migrations, the API
 * and one worker, with every service's log merged into this process's stdout.
 * `--infra-only` stops before the apps, for running them under a debugger.
 */

const DATA_DIR = '.data';
const DATABASE_NAME = 'platform';
/** Extra time past the apps' own SHUTDOWN_GRACE_MS before they are killed. */
const STOP_MARGIN_MS = 5_000;
/** Prometheus's own default port, where --observe serves it unless that is taken. */
const PROMETHEUS_PORT = 9090;

interface Context {
  env: LocalEnv;
  state: LocalState;
  merged: MergedLog;
  log: Logger;
  supervisor: Supervisor;
}

/** The run's flags, as `npm start -- <flags>` passes them on. */
const FLAGS = { infraOnly: '--infra-only', observe: '--observe' } as const;

function parseArguments(argv: string[]): { infraOnly: boolean; observe: boolean } {
  const program = new Command()
    .name('npm start --')
    .description('Run the platform locally: PostgreSQL, Redis, object store, migrations, API and one worker.')
    .option(FLAGS.infraOnly, 'start PostgreSQL, Redis and the object store and apply migrations, without the API and worker')
    .addOption(
      new Option(FLAGS.observe, 'also run Prometheus (Debian\'s, when installed) scraping the api and worker with the generated alert rules (not with --infra-only)').conflicts('infraOnly'),
    )
    .parse(argv);
  const opts = program.opts<{ infraOnly?: boolean; observe?: boolean }>();
  return { infraOnly: opts.infraOnly === true, observe: opts.observe === true };
}

/**
 * `npm start --observe`, without the `--` that passes it on, is taken by npm as a setting of
 * its own (npm_config_observe) and never reaches this process, which would start without
 * it. The flags npm took that way, to be refused with the right spelling.
 */
function flagsTakenByNpm(source: NodeJS.ProcessEnv, argv: string[]): string[] {
  return Object.values(FLAGS).filter((flag) => source[`npm_config_${flag.slice(2).replaceAll('-', '_')}`] !== undefined && !argv.includes(flag));
}

/** The API and worker entry points next to this file: compiled JavaScript under dist/, or TypeScript when run from the sources. */
function appCommand(service: 'api' | 'worker'): { command: string; args: string[] } {
  const extension = path.extname(__filename);
  const entry = path.resolve(__dirname, '..', service, `main${extension}`);
  if (!existsSync(entry)) {
    throw new LocalRunError(`${entry} does not exist${extension === '.js' ? ': run npm run build' : ''}`);
  }
  return extension === '.ts'
    ? { command: process.execPath, args: ['-r', require.resolve('@swc-node/register'), entry] }
    : { command: process.execPath, args: ['--enable-source-maps', entry] };
}

async function checkPrerequisites(env: LocalEnv, infraOnly: boolean): Promise<void> {
  if (!env.REDIS_URL && !findRedisServer()) {
    throw new LocalRunError('redis-server is not on PATH: install it (apt-get install redis-server, brew install redis) or set REDIS_URL');
  }
  if (!infraOnly) {
    appCommand('api');
    appCommand('worker');
    // A port the user chose is kept or the run stops; an unset one moves (chooseApiPort, workerMetricsPort).
    // Kept also from the run's own servers, which start before the API and the worker bind theirs.
    for (const variable of ['PORT', 'WORKER_METRICS_PORT'] as const) {
      const port = env[variable];
      if (port === undefined) continue;
      if (!(await isPortFree(port, '0.0.0.0'))) {
        throw new LocalRunError(`${variable} ${port} is already in use: stop what holds it or set ${variable} to a free port`);
      }
      reservePort(port);
    }
  }
}

/**
 * The port a listener of the local run takes when the user set none: `usual` (where its
 * clients and the docs look first) when it is free on `host`, else a free one, the one
 * chosen last time when that is still free, so a second checkout keeps its addresses from
 * run to run. A moved port is said in the log, at `level`.
 */
async function usualOrFreePort(
  { state, log }: Context,
  listener: { name: string; what: string; usual: number; host: string; level: 'info' | 'warn' },
): Promise<number> {
  if (await isPortUsable(listener.usual, listener.host)) return listener.usual;
  const port = await state.port(listener.name, undefined, listener.host);
  log[listener.level]({ port }, `${listener.what} on port ${port} (${listener.usual} is taken)`);
  return port;
}

/**
 * The port for the API's next start until it holds one (ApiPort): PORT when set
 * (checkPrerequisites made sure it was free), else 8080 or, when something else holds that
 * (another checkout's run), a free one, with a warning.
 */
async function chooseApiPort(context: Context): Promise<number> {
  if (context.env.PORT !== undefined) return context.env.PORT;
  // The API listens on every interface, so that is where the port must be free.
  return usualOrFreePort(context, { name: 'api', what: 'API', usual: PORTS.api, host: '0.0.0.0', level: 'warn' });
}

async function startEmbeddedPostgres({ state, merged, log, supervisor }: Context): Promise<string> {
  const password = await state.secret('postgres-password');
  const cluster = new PostgresCluster({
    binDir: await runnableEmbeddedPostgresBinDir(),
    dataDir: state.path('postgres'),
    port: await state.port('postgres'),
    password,
    // TCP only: a unix socket path inside a deep checkout can exceed the 107-byte limit.
    settings: { unix_socket_directories: '' },
    onLine: (line) => merged.serviceLine('postgres', line, postgresLineLevel(line)),
    onUnexpectedExit: (exit) => supervisor.childExited('postgres', exit),
    parentDeathSignal: 'SIGINT',
    ownProcessGroup: true,
  });
  supervisor.onShutdown({ name: 'postgres', stop: () => cluster.stop(), kill: () => cluster.kill() });
  if (await initialiseLocalCluster(cluster, password)) log.info({ dataDir: cluster.dataDir }, 'PostgreSQL cluster created');
  await cluster.start().catch((error: unknown) => {
    if ((error as { code?: string }).code !== '28P01') throw error;
    throw new LocalRunError(
      `PostgreSQL in ${cluster.dataDir} rejects the password in ${state.path('postgres-password')}: restore the file of the run that created it, or delete ${cluster.dataDir}`,
    );
  });
  if (await cluster.createDatabase(DATABASE_NAME, { ifMissing: true })) log.info(`database ${DATABASE_NAME} created`);
  const databaseUrl = cluster.url(DATABASE_NAME);
  log.info({ url: redactUrl(databaseUrl), passwordFile: state.path('postgres-password') }, 'PostgreSQL ready');
  return databaseUrl;
}

async function startPrivateRedis({ state, merged, log, supervisor }: Context): Promise<string> {
  const redis = new RedisServer({
    port: await state.port('redis'),
    dir: state.path('redis'),
    // Other users of this machine may reach 127.0.0.1 too.
    password: await state.secret('redis-password'),
    // Queued jobs survive a restart of the local run.
    appendonly: true,
    onLine: (line) => {
      const { level, msg } = parseRedisLine(line);
      merged.record('redis', level, msg);
    },
    onUnexpectedExit: (exit) => supervisor.childExited('redis', exit),
    parentDeathSignal: 'SIGTERM',
    ownProcessGroup: true,
  });
  supervisor.onShutdown({ name: 'redis', stop: () => redis.stop(), kill: () => redis.kill() });
  await redis.start();
  log.info({ url: redactUrl(redis.url), dir: redis.dir, passwordFile: state.path('redis-password') }, 'Redis ready');
  return redis.url;
}

async function prepareObjectStore({ env, state, log }: Context): Promise<string> {
  const directory = objectStoreDirectory(env, state.path('objects'));
  await mkdir(directory, { recursive: true });
  log.info({ directory }, 'object store: local filesystem');
  return directory;
}

async function applyMigrations(databaseUrl: string, env: LocalEnv, log: Logger): Promise<void> {
  // The embedded server speaks plain TCP on 127.0.0.1; an external one gets the TLS mode the services use.
  const applied = await runMigrations(databaseUrl, log, {
    ssl: env.DATABASE_URL ? env.DATABASE_SSL : 'disable',
    onLockWait: (wait) => log.warn({ migration: wait.migration, tries: wait.tries }, `migration waits for a table lock; holding table locks: ${describeLockHolders(wait.holders)}`),
  });
  log.info({ applied: applied.length }, applied.length ? 'migrations applied' : 'schema up to date');
}

/**
 * The worker's metrics port for its next start: WORKER_METRICS_PORT when set, else 9091
 * (what its probes and ServiceMonitor use in a cluster) or, when something else holds that,
 * a free one, said in the log. Chosen again before every restart: nothing outside the run
 * needs to find it (--observe's Prometheus follows it).
 */
async function workerMetricsPort(context: Context): Promise<number> {
  if (context.env.WORKER_METRICS_PORT !== undefined) return context.env.WORKER_METRICS_PORT;
  // The worker listens on every interface, so that is where the port must be free.
  return usualOrFreePort(context, { name: 'workerMetrics', what: 'worker metrics', usual: PORTS.workerMetrics, host: '0.0.0.0', level: 'info' });
}

/** The pods' startup and liveness probes, asked of the app on the port its environment gives it (the API's PORT, the worker's WORKER_METRICS_PORT). */
function healthProbes(portVariable: 'PORT' | 'WORKER_METRICS_PORT'): HealthProbes {
  const timing = (probe: (typeof HEALTH_PROBES)[keyof typeof HEALTH_PROBES]) => ({
    periodMs: probe.periodSeconds * 1_000,
    timeoutMs: probe.timeoutSeconds * 1_000,
    failureThreshold: probe.failureThreshold,
  });
  return {
    url: (appEnv) => `http://127.0.0.1:${appEnv[portVariable]}${PATHS.healthz}`,
    startup: timing(HEALTH_PROBES.startup),
    liveness: timing(HEALTH_PROBES.liveness),
  };
}

/** `onWorkerMetricsPort` hears the worker's metrics port before each of its starts. */
function startApps(context: Context, appEnv: NodeJS.ProcessEnv, apiPort: ApiPort, onWorkerMetricsPort: (port: number) => void): void {
  const { env, merged, supervisor, log } = context;
  const environments: Record<'api' | 'worker', () => Promise<NodeJS.ProcessEnv>> = {
    api: async () => apiEnvironment(appEnv, await apiPort.next()),
    worker: async () => {
      const metricsPort = await workerMetricsPort(context);
      onWorkerMetricsPort(metricsPort);
      return workerEnvironment(appEnv, metricsPort);
    },
  };
  const apps = (['api', 'worker'] as const).map(
    (name) =>
      new AppProcess(
        {
          name,
          ...appCommand(name),
          environment: environments[name],
          ...(name === 'api' && { onMessage: (message: unknown) => apiPort.hear(message) }),
          stopTimeoutMs: env.SHUTDOWN_GRACE_MS + STOP_MARGIN_MS,
          restartPolicy: new RestartPolicy(),
          health: healthProbes(name === 'api' ? 'PORT' : 'WORKER_METRICS_PORT'),
        },
        merged,
        { log, onGiveUp: (message) => void supervisor.stop(message, 1) },
      ),
  );
  // One step for both: they drain side by side, and both are gone before Redis and PostgreSQL stop.
  supervisor.onShutdown({
    name: 'api and worker',
    stop: async () => void (await Promise.all(apps.map((app) => app.stop()))),
    kill: async () => void (await Promise.all(apps.map((app) => app.kill()))),
  });
  for (const app of apps) {
    app.start().catch((error: unknown) => {
      log.fatal({ err: error }, `${app.name} could not start`);
      void supervisor.stop(`${app.name} could not start`, 1);
    });
  }
}

/** The API's port once it listens there and answers its health check; undefined when the run stops first. */
async function waitUntilApiHealthy(apiPort: ApiPort, stopping: AbortSignal, timeoutMs = 120_000): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  // Only our own API's word says the port is ours: an answer there may be another run's.
  const port = await apiPort.held(stopping, timeoutMs);
  if (port === undefined) return undefined;
  const url = `http://127.0.0.1:${port}${PATHS.healthz}`;
  while (!stopping.aborted) {
    try {
      const response = await fetch(url, { signal: AbortSignal.any([stopping, AbortSignal.timeout(2_000)]) });
      if (response.ok) return port;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new LocalRunError(`the API did not answer ${PATHS.healthz} within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return undefined;
}

async function main(argv: string[]): Promise<number> {
  const { infraOnly, observe: observed } = parseArguments(argv);
  const swallowed = flagsTakenByNpm(process.env, argv);
  if (swallowed.length > 0) {
    process.stderr.write(`npm start: npm took ${swallowed.join(' ')} for settings of its own and did not pass ${swallowed.length > 1 ? 'them' : 'it'} on: run npm start -- ${swallowed.join(' ')}\n`);
    return 2;
  }
  let env: LocalEnv;
  try {
    env = parseLocalEnv(process.env);
  } catch (error) {
    if (!(error instanceof LocalEnvError)) throw error;
    for (const problem of error.problems) process.stderr.write(`npm start: ${problem}\n`);
    return 2;
  }
  const merged = new MergedLog(process.stdout, process.stdout.isTTY === true);
  const log = createLogger({ service: 'local', level: env.LOG_LEVEL, destination: merged.destinationFor('local') });
  const supervisor = new Supervisor(log);
  supervisor.handleSignals();
  const context: Context = { env, state: new LocalState(path.resolve(DATA_DIR)), merged, log, supervisor };

  try {
    await checkPrerequisites(env, infraOnly);
    // PostgreSQL refuses to run as root and runs as its own system user, which must be able to reach its data.
    const postgresUser = !env.DATABASE_URL && isRoot() ? lookupSystemUser('postgres') : undefined;
    await context.state.prepare({ owner: postgresUser });
    await context.state.claimRun();
    const databaseUrl = env.DATABASE_URL ?? (await startEmbeddedPostgres(context));
    const redisUrl = env.REDIS_URL ?? (await startPrivateRedis(context));
    const objectStoreDir = env.S3_BUCKET ? undefined : await prepareObjectStore(context);
    await applyMigrations(databaseUrl, env, log);
    // `platform keys rotate` seals new signing keys with the same secret as the api.
    const keyEncryptionSecret = env.KEY_ENCRYPTION_SECRET ?? (await context.state.secret('key-encryption-secret'));
    await context.state.writeCliEnv({ DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, OBJECT_STORE_DIR: objectStoreDir, KEY_ENCRYPTION_SECRET: keyEncryptionSecret });
    if (infraOnly) {
      log.info({ postgres: redactUrl(databaseUrl), redis: redactUrl(redisUrl), objects: objectStoreDir ?? 's3' }, 'infrastructure ready (--infra-only): Ctrl-C stops it');
    } else {
      const chosenApiPort = new ApiPort(() => chooseApiPort(context));
      // Where the worker serves its metrics now, and who follows it there (--observe's Prometheus).
      const workerMetrics: { port?: number; follow?: (port: number) => void } = {};
      const appEnv = appEnvironment(process.env, { databaseUrl, redisUrl, keyEncryptionSecret, objectStoreDir });
      startApps(context, appEnv, chosenApiPort, (port) => {
        workerMetrics.port = port;
        workerMetrics.follow?.(port);
      });
      const apiPort = await waitUntilApiHealthy(chosenApiPort, supervisor.stopping);
      if (apiPort !== undefined && !supervisor.stopping.aborted) {
        const base = `http://localhost:${apiPort}`;
        log.info(`API ready on ${base}  (web console: ${base}/, docs: ${base}${PATHS.docs})`);
        if (objectStoreDir) log.info({ directory: path.join(objectStoreDir, 'mail') }, 'mail (password resets) is dropped here as .eml files unless SMTP_URL is set');
      }
      if (observed && apiPort !== undefined && !supervisor.stopping.aborted) {
        const workerTarget = (port: number) => `127.0.0.1:${port}`;
        const prometheus = await observe({
          dir: context.state.path('prometheus'),
          port: await usualOrFreePort(context, { name: 'prometheus', what: 'Prometheus', usual: PROMETHEUS_PORT, host: '127.0.0.1', level: 'info' }),
          targets: { api: `127.0.0.1:${apiPort}`, worker: workerTarget(workerMetrics.port ?? PORTS.workerMetrics) },
          log,
          onLine: (line) => merged.serviceLine('prometheus', line, /level=(error|warn)/.exec(line)?.[1] === 'error' ? 'error' : /level=warn/.test(line) ? 'warn' : 'info'),
          // An observer: the platform runs on without it.
          onUnexpectedExit: (exit) => log.error({ code: exit.code, signal: exit.signal }, 'prometheus exited unexpectedly (--observe): the services run on unobserved'),
          onShutdown: (step) => supervisor.onShutdown(step),
        });
        workerMetrics.follow = (port) => {
          prometheus?.retarget('worker', workerTarget(port)).catch((error: unknown) => log.warn({ err: error }, 'could not point prometheus at the restarted worker'));
        };
      }
    }
  } catch (error) {
    // A failure caused by an ongoing shutdown (Ctrl-C during startup) is not news.
    if (!supervisor.stopping.aborted) {
      if (error instanceof LocalRunError) log.fatal(error.message);
      else log.fatal({ err: error }, 'startup failed');
      await supervisor.stop('startup failed', 1);
    }
  }
  await supervisor.stopped();
  context.state.releaseRun();
  return supervisor.exitCode;
}

main(process.argv).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`npm start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
