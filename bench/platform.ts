import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runMigrations } from '../services/core/db/migrate';
import { findFreePort } from '../services/local/free-port';
import { initialiseLocalCluster, PostgresCluster, runnableEmbeddedPostgresBinDir } from '../services/local/postgres';
import { RedisServer } from '../services/local/redis';

/**
 * The platform as `npm start` runs it (embedded PostgreSQL, a private redis-server, the
 * API and one worker as separate processes), started by the benchmark itself so it knows
 * every process id and can charge CPU and memory to each.
 */
export interface BenchPlatform {
  apiUrl: string;
  workerMetricsUrl: string;
  databaseUrl: string;
  redisUrl: string;
  pids: { api: number; worker: number; postgres: number; redis: number };
  logFile: string;
  stop(): Promise<void>;
}

export interface BenchPlatformOptions {
  /** API_PROCESSES; the platform's default (what `npm start` runs) when unset. */
  apiProcesses?: number;
  /** WORKER_CONCURRENCY; the platform's default when unset. */
  workerConcurrency?: number;
  /** Further variables for the API and the worker (bench:compare sets the same ones on both sides). */
  env?: Record<string, string>;
  /** Extra postgresql.conf settings, e.g. shared_preload_libraries for pg_stat_statements while profiling. */
  postgresSettings?: Record<string, string>;
  /** Extra node flags for the API and worker, e.g. --cpu-prof while profiling. */
  nodeArgs?: string[];
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function waitForHttp(url: string, child: ChildProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${url}: the process exited with ${child.exitCode}; see the bench log`);
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(1_000) })).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not become healthy within ${timeoutMs / 1_000} s`);
}

export async function startBenchPlatform(options: BenchPlatformOptions): Promise<BenchPlatform> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'pk-bench-'));
  // PostgreSQL runs as its own system user when we are root; it must be able to enter this directory.
  await chmod(root, 0o711);
  const logFile = path.join(root, 'platform.log');
  const log = createWriteStream(logFile);
  const password = 'bench-only-password';

  const postgres = new PostgresCluster({
    binDir: await runnableEmbeddedPostgresBinDir(),
    dataDir: path.join(root, 'postgres'),
    port: await findFreePort(),
    password,
    settings: { unix_socket_directories: '', ...options.postgresSettings },
    onLine: (line) => log.write(`postgres: ${line}\n`),
  });
  await initialiseLocalCluster(postgres, password);
  await postgres.start();
  await postgres.createDatabase('platform', { ifMissing: true });
  const databaseUrl = postgres.url('platform');

  const redis = new RedisServer({
    port: await findFreePort(),
    dir: path.join(root, 'redis'),
    appendonly: true,
    onLine: (line) => log.write(`redis: ${line}\n`),
  });
  await redis.start();
  await runMigrations(databaseUrl);

  const port = await findFreePort();
  const workerMetricsPort = await findFreePort();
  // What `npm start` gives the apps (services/local/start.ts), nothing tuned: the figures are the defaults'.
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    NODE_ENV: 'development',
    DATABASE_URL: databaseUrl,
    REDIS_URL: redis.url,
    OBJECT_STORE_DIR: path.join(root, 'objects'),
    PORT: String(port),
    WORKER_METRICS_PORT: String(workerMetricsPort),
    ...(options.apiProcesses !== undefined && { API_PROCESSES: String(options.apiProcesses) }),
    ...(options.workerConcurrency !== undefined && { WORKER_CONCURRENCY: String(options.workerConcurrency) }),
    ...options.env,
  };
  const distRoot = path.resolve(__dirname, '..', 'services');
  const startApp = (service: 'api' | 'worker', extra: Record<string, string>): ChildProcess => {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), path.join(distRoot, service, 'main.js')], { env: { ...env, ...extra, SERVICE_NAME: service }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (chunk: Buffer) => log.write(chunk));
    child.stderr?.on('data', (chunk: Buffer) => log.write(chunk));
    return child;
  };
  const api = startApp('api', { KEY_ENCRYPTION_SECRET: 'bench-only-sealing-secret-0123456789abcdef' });
  const worker = startApp('worker', {});
  const apiUrl = `http://127.0.0.1:${port}`;
  const workerMetricsUrl = `http://127.0.0.1:${workerMetricsPort}`;
  await waitForHttp(`${apiUrl}/readyz`, api);
  await waitForHttp(`${workerMetricsUrl}/healthz`, worker);

  return {
    apiUrl,
    workerMetricsUrl,
    databaseUrl,
    redisUrl: redis.url,
    pids: { api: api.pid ?? 0, worker: worker.pid ?? 0, postgres: postgres.pid ?? 0, redis: redis.pid ?? 0 },
    logFile,
    async stop() {
      api.kill('SIGTERM');
      worker.kill('SIGTERM');
      await Promise.all([waitForExit(api, 30_000), waitForExit(worker, 30_000)]);
      await redis.stop();
      await postgres.stop();
      log.end();
      await rm(path.join(root, 'postgres'), { recursive: true, force: true });
      await rm(path.join(root, 'redis'), { recursive: true, force: true });
      await rm(path.join(root, 'objects'), { recursive: true, force: true });
    },
  };
}
