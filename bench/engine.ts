import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { parseEnv, SubmitJobBody } from '../services/contract';
import { runMigrations } from '../services/core/db/migrate';
import { createLogger } from '../services/core/logger';
import { createMetrics } from '../services/core/metrics';
import { createRuntime } from '../services/core/runtime';
import { isRoot, lookupSystemUser } from '../services/local/child';
import { findFreePort } from '../services/local/free-port';
import { PostgresCluster, runnableEmbeddedPostgresBinDir } from '../services/local/postgres';
import { RedisServer } from '../services/local/redis';
import { JobRunner } from '../services/worker/runner';

/**
 * In-process engine measurement (not the HTTP bench): N echo jobs submitted through
 * JobService.submit by C concurrent callers, one JobRunner in the same process, timed
 * from the first submit until every job is `succeeded` in PostgreSQL.
 *
 *   node -r @swc-node/register bench/engine.ts [--jobs 20000] [--submitters 256] [--concurrency 200]
 *
 * Uses DATABASE_URL / REDIS_URL when set; otherwise starts a private PostgreSQL (fsync on,
 * as in production) and redis-server on free ports and removes them afterwards.
 */
function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  const value = index >= 0 ? Number(process.argv[index + 1]) : fallback;
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer`);
  return value;
}

interface Servers {
  databaseUrl: string;
  redisUrl: string;
  stop(): Promise<void>;
}

async function startServers(): Promise<Servers> {
  if (process.env.DATABASE_URL && process.env.REDIS_URL) {
    return { databaseUrl: process.env.DATABASE_URL, redisUrl: process.env.REDIS_URL, stop: async () => undefined };
  }
  const baseDir = await mkdtemp(path.join(os.tmpdir(), 'pk-bench-engine-'));
  const user = isRoot() ? lookupSystemUser('postgres') : undefined;
  if (user) await chown(baseDir, user.uid, user.gid);
  const debianBin = '/usr/lib/postgresql/15/bin';
  const postgres = new PostgresCluster({
    binDir: existsSync(path.join(debianBin, 'postgres')) ? debianBin : await runnableEmbeddedPostgresBinDir(),
    dataDir: path.join(baseDir, 'pg'),
    port: await findFreePort(),
    socketDir: baseDir,
    settings: { max_connections: 100, shared_buffers: '256MB' },
    parentDeathSignal: 'SIGKILL',
  });
  await postgres.initialise({ auth: 'trust', sync: false });
  await postgres.start();
  const redis = new RedisServer({ port: await findFreePort(), dir: path.join(baseDir, 'redis'), appendonly: false, parentDeathSignal: 'SIGKILL' });
  await redis.start();
  return {
    databaseUrl: postgres.url('postgres'),
    redisUrl: redis.url,
    async stop() {
      await Promise.allSettled([postgres.stop(), redis.stop()]);
      await rm(baseDir, { recursive: true, force: true });
    },
  };
}

async function main(): Promise<void> {
  const jobs = argument('jobs', 20_000);
  const submitters = argument('submitters', 256);
  const concurrency = argument('concurrency', 200);
  const servers = await startServers();
  try {
    await runMigrations(servers.databaseUrl);
    const ownerId = randomUUID();
    const admin = new Client({ connectionString: servers.databaseUrl });
    await admin.connect();
    await admin.query("INSERT INTO users (id, email, password_hash) VALUES ($1, $2, 'bench')", [ownerId, `${ownerId}@bench.test`]);

    const env = parseEnv({
      DATABASE_URL: servers.databaseUrl,
      REDIS_URL: servers.redisUrl,
      QUEUE_PREFIX: `{bench-${randomUUID().slice(0, 8)}}`,
      KEY_ENCRYPTION_SECRET: 'bench-secret-bench-secret-bench-secret-0',
      DATABASE_POOL_MAX: '20',
      OBJECT_STORE_DIR: path.join(os.tmpdir(), 'pk-bench-engine-objects'),
    });
    const log = createLogger({ service: 'bench', level: 'warn' });
    const metrics = createMetrics('bench');
    const core = await createRuntime(env, { service: 'api', log, metrics });
    const runner = new JobRunner(
      { batchPool: core.batchPool, generalPool: core.generalPool, files: core.files, store: core.store, log, metrics, relay: core.relay },
      { redisUrl: env.REDIS_URL, prefix: env.QUEUE_PREFIX, concurrency },
    );
    await runner.start();

    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    let next = 0;
    const submitOne = async (): Promise<void> => {
      while (next < jobs) {
        next += 1;
        await core.jobs.submit({ ownerId, body: SubmitJobBody.parse({ type: 'echo', input: { payload: { n: next } } }) });
      }
    };
    await Promise.all(Array.from({ length: submitters }, submitOne));
    const submitSeconds = (performance.now() - started) / 1_000;

    const succeeded = async () => (await metrics.jobsSucceeded.get()).values.reduce((sum, value) => sum + value.value, 0);
    while ((await succeeded()) < jobs) await new Promise((resolve) => setTimeout(resolve, 20));
    const totalSeconds = (performance.now() - started) / 1_000;
    const cpu = process.cpuUsage(cpuBefore);

    const { rows } = await admin.query<{ status: string; count: number }>('SELECT status, count(*)::int AS count FROM jobs GROUP BY status');
    await runner.stop(5_000);
    await core.relay.queue.obliterate({ force: true });
    await core.close();
    await admin.end();

    const report = {
      jobs,
      submitters,
      concurrency,
      submitPerSecond: Math.round(jobs / submitSeconds),
      endToEndPerSecond: Math.round(jobs / totalSeconds),
      seconds: Number(totalSeconds.toFixed(2)),
      nodeCpuCoresUsed: Number(((cpu.user + cpu.system) / 1e6 / totalSeconds).toFixed(2)),
      rows: Object.fromEntries(rows.map((row) => [row.status, row.count])),
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await servers.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench/engine: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
