import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Client } from 'pg';
import { parseEnv, SubmitJobBody, type Env, type JobView } from '../../../services/contract';
import { isTerminalStatus } from '../../../services/core/jobs/lifecycle';
import { runMigrations } from '../../../services/core/db/migrate';
import { createLogger, type Logger } from '../../../services/core/logger';
import { createMetrics } from '../../../services/core/metrics';
import type { InternalSubmitRequest, SubmitRequest } from '../../../services/core/jobs/types';
import { createRuntime, type Runtime, type RuntimeOptions } from '../../../services/core/runtime';
import { readJobStates } from '../../../services/core/queue/job-states';
import { SHARED_ENTRY_ID_PREFIX } from '../../../services/core/queue/keys';
import { JobRunner, type RunnerDeps, type RunnerOptions } from '../../../services/worker/runner';
import { nodeArgsFor } from '../../harness/compiled-children';
import { findFreePort } from '../../harness/free-port';
import { useSharedServices } from '../../harness/shared';
import { FAST_STALL } from './stall';

export interface EngineFixture {
  env: Env;
  core: Runtime;
  log: Logger;
  objectDir: string;
  ownerId: string;
  /** Starts a runner in this process; closed by `close()`. */
  startRunner(options?: Partial<RunnerOptions>, deps?: Partial<RunnerDeps>): Promise<JobRunner>;
  query<T extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** The first row of a query that must return one. */
  one<T extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T>;
  createUser(): Promise<string>;
  close(): Promise<void>;
}

export function testEnv(values: { databaseUrl: string; redisUrl: string; redisPrefix: string; objectDir: string }, extra: Record<string, string> = {}): Env {
  return parseEnv({
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DATABASE_URL: values.databaseUrl,
    DATABASE_POOL_MAX: '10',
    REDIS_URL: values.redisUrl,
    QUEUE_PREFIX: values.redisPrefix,
    OBJECT_STORE_DIR: values.objectDir,
    KEY_ENCRYPTION_SECRET: 'test-secret-test-secret-test-secret-0123',
    RELAY_SWEEP_MS: '500',
    ...extra,
  });
}

export async function createUser(databaseUrl: string): Promise<string> {
  const id = randomUUID();
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query("INSERT INTO users (id, email, password_hash) VALUES ($1, $2, 'not-a-hash')", [id, `${id}@example.test`]);
  } finally {
    await client.end();
  }
  return id;
}

/**
 * A migrated database and a Redis prefix of their own, a platform core on them and a
 * user who owns the jobs. Servers come from the shared harness unless given.
 */
export async function createEngineFixture(
  options: { servers?: { databaseUrl: string; redisUrl: string; redisPrefix: string }; core?: Partial<RuntimeOptions>; env?: Record<string, string> } = {},
): Promise<EngineFixture> {
  const servers = options.servers ?? (await useSharedServices());
  await runMigrations(servers.databaseUrl);
  const objectDir = await mkdtemp(path.join(os.tmpdir(), 'pk-engine-objects-'));
  const env = testEnv({ ...servers, objectDir }, options.env);
  const log = createLogger({ service: 'engine-test', level: env.LOG_LEVEL });
  const core = await createRuntime(env, {
    service: 'api',
    log,
    metrics: createMetrics('engine-test'),
    relay: { sweepGraceMs: 300, lostRunningAfterMs: 3_000 },
    ...options.core,
  });
  const ownerId = await createUser(servers.databaseUrl);
  const runners: JobRunner[] = [];

  return {
    env,
    core,
    log,
    objectDir,
    ownerId,
    async startRunner(runnerOptions = {}, deps = {}) {
      const runner = new JobRunner(
        { batchPool: core.batchPool, generalPool: core.generalPool, files: core.files, store: core.store, log, relay: core.relay, ...deps },
        { redisUrl: env.REDIS_URL, prefix: env.QUEUE_PREFIX, concurrency: 20, stall: FAST_STALL, drainDelaySeconds: 1, ...runnerOptions },
      );
      runners.push(runner);
      await runner.start();
      return runner;
    },
    async query<T extends Record<string, unknown>>(sql: string, params: unknown[] = []) {
      return (await core.generalPool.query<T>(sql, params)).rows;
    },
    async one<T extends Record<string, unknown>>(sql: string, params: unknown[] = []) {
      const [row] = (await core.generalPool.query<T>(sql, params)).rows;
      if (!row) throw new Error(`no row from ${sql}`);
      return row;
    },
    createUser: () => createUser(servers.databaseUrl),
    async close() {
      await Promise.all(runners.map((runner) => runner.stop(1_000)));
      await core.relay.queue.obliterate({ force: true }).catch(() => undefined);
      await core.close();
      await rm(objectDir, { recursive: true, force: true });
    },
  };
}

/**
 * A submit request as the HTTP route makes it: the body parsed by the contract's schema
 * (which throws on what the route would answer 400).
 */
export function submission(request: InternalSubmitRequest): SubmitRequest {
  const { ownerId, idempotencyKey, requestId, ...body } = request;
  return { ownerId, idempotencyKey, requestId, body: SubmitJobBody.parse(body) };
}

/** A file of the fixture's user holding `content`, uploaded through the file service. */
export function uploadFile(fx: Pick<EngineFixture, 'core' | 'ownerId'>, name: string, contentType: string, content: string | Buffer) {
  const bytes = Buffer.from(content);
  return fx.core.files.upload({ ownerId: fx.ownerId, name, contentType, body: Readable.from(bytes), maxBytes: Math.max(bytes.length, 1) });
}

/** The job as its owner reads it once it is succeeded, failed (dead-lettered) or cancelled. */
export function finished(fx: Pick<EngineFixture, 'core' | 'ownerId'>, jobId: string, options: { ownerId?: string; timeoutMs?: number } = {}): Promise<JobView> {
  return waitFor(
    `job ${jobId} to finish`,
    async () => {
      const current = await fx.core.jobs.get(options.ownerId ?? fx.ownerId, jobId);
      return isTerminalStatus(current.status) && current;
    },
    options.timeoutMs,
  );
}

/** The job's status as its owner would read it. */
export async function statusOf(fx: EngineFixture, jobId: string): Promise<string> {
  return (await fx.core.jobs.get(fx.ownerId, jobId)).status;
}

/** What a processor that runs until it is stopped awaits: rejects with the signal's reason once it aborts, after `onAbort`. */
export function untilAborted(signal: AbortSignal, onAbort?: () => void): Promise<never> {
  return new Promise((_resolve, reject) =>
    signal.addEventListener(
      'abort',
      () => {
        onAbort?.();
        reject(signal.reason as Error);
      },
      { once: true },
    ),
  );
}

/** Polls until `check` returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 20_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Queued echo rows with these payloads, handed to BullMQ as the submit path does: echo jobs
 * share entries, so these few share one. The rows are written directly, so which jobs share
 * an entry does not hang on timing. Answers their ids, in order.
 */
export async function queueSharedEntry(fx: Pick<EngineFixture, 'core' | 'ownerId' | 'query'>, payloads: string[], options: { minutesAgo?: number } = {}): Promise<string[]> {
  const ids = payloads.map(() => randomUUID());
  for (const [index, id] of ids.entries()) {
    await fx.query(
      "INSERT INTO jobs (id, owner_id, type, input, status, max_attempts, created_at, updated_at) VALUES ($1, $2, 'echo', $3, 'queued', 3, now() - $4::int * interval '1 minute', now() - $4::int * interval '1 minute')",
      [id, fx.ownerId, JSON.stringify({ payload: payloads[index] }), options.minutesAgo ?? 0],
    );
  }
  const queued = await fx.core.relay.enqueue(ids.map((id) => ({ id, type: 'echo', priority: 0 })), 'submit');
  const entry = await fx.core.relay.queue.getJob(`${SHARED_ENTRY_ID_PREFIX}${ids[0]}`);
  if (queued !== ids.length || JSON.stringify(entry?.data) !== JSON.stringify({ jobIds: ids })) throw new Error('the jobs did not get one shared entry');
  return ids;
}

/**
 * A queued job whose runs ended with their worker `crashes` times already, handed to BullMQ
 * in an entry of its own carrying that count, as a worker queues a job again after such runs
 * (with STALL_SETTINGS' maxStalledCount, 2 puts it on its last chance). Answers its id.
 */
export async function queueAfterCrashes(fx: Pick<EngineFixture, 'core' | 'ownerId' | 'query'>, type: string, input: unknown, crashes: number): Promise<string> {
  const id = randomUUID();
  await fx.query("INSERT INTO jobs (id, owner_id, type, input, status, max_attempts) VALUES ($1, $2, $3, $4, 'queued', 3)", [id, fx.ownerId, type, JSON.stringify(input)]);
  if ((await fx.core.relay.requeue([{ id, type, priority: 0 }], 'requeue', { crashes })) !== 1) throw new Error('the job did not get its entry');
  return id;
}

/** Waits until the relay's hand-off (gathered for a few milliseconds after the commit) put each job in BullMQ, in an entry of its own or a shared one. */
export function handedOver(fx: Pick<EngineFixture, 'core' | 'env'>, jobIds: string | readonly string[]): Promise<true> {
  const ids = typeof jobIds === 'string' ? [jobIds] : jobIds;
  return waitFor(`${ids.length === 1 ? `job ${ids[0]}` : `${ids.length} jobs`} to reach BullMQ`, async () => {
    const states = await readJobStates(fx.core.redis.client, fx.env.QUEUE_PREFIX, ids);
    return [...states.values()].every((state) => state === 'held');
  });
}

export interface WorkerChild {
  pid: number;
  metricsPort: number;
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
  kill(signal: NodeJS.Signals): void;
}

const REPO_ROOT = path.resolve(__dirname, '../../..');

/** Starts a worker as a child process (`entry`, a TypeScript file of this checkout; see nodeArgsFor) on the fixture's database, Redis and store. */
export async function spawnWorker(fx: EngineFixture, entry: string, extraEnv: Record<string, string> = {}): Promise<WorkerChild> {
  const metricsPort = await findFreePort();
  const child = spawn(process.execPath, nodeArgsFor(entry), {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'test',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'info',
      DATABASE_URL: fx.env.DATABASE_URL,
      REDIS_URL: fx.env.REDIS_URL,
      QUEUE_PREFIX: fx.env.QUEUE_PREFIX,
      OBJECT_STORE_DIR: fx.objectDir,
      WORKER_METRICS_PORT: String(metricsPort),
      WORKER_CONCURRENCY: '10',
      RELAY_SWEEP_MS: '500',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  children.add(child);
  void exited.then(() => children.delete(child));
  // waitFor keeps polling past a check that throws, so an exit is an answer of its own, not an error.
  const started = await waitFor(
    'the worker child to be ready',
    async () => {
      if (child.exitCode !== null || child.signalCode !== null) return 'exited';
      const response = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).catch(() => undefined);
      return response?.status === 200 && 'ready';
    },
    30_000,
    100,
  );
  if (started === 'exited') throw new Error(`worker exited early (${child.exitCode ?? child.signalCode}):\n${output}`);
  return {
    pid: child.pid as number,
    metricsPort,
    exited,
    output: () => output,
    kill: (signal) => child.kill(signal),
  };
}

const children = new Set<ChildProcess>();

/**
 * Plays the orchestrator for worker children that kill themselves: starts one again each time
 * one exits, until `done` holds (the last one is then stopped with SIGTERM); throws after
 * `maxStarts` starts without it.
 */
export async function superviseWorkers(fx: EngineFixture, entry: string, what: string, done: () => Promise<boolean>, options: { env?: Record<string, string>; maxStarts?: number } = {}): Promise<void> {
  const maxStarts = options.maxStarts ?? 12;
  for (let start = 0; start < maxStarts && !(await done()); start += 1) {
    const worker = await spawnWorker(fx, entry, options.env).catch(() => undefined);
    if (!worker) continue;
    const finished = await Promise.race([worker.exited.then(() => false), waitFor(what, done, 30_000).catch(() => false)]);
    if (finished) {
      worker.kill('SIGTERM');
      await worker.exited;
      return;
    }
  }
  if (!(await done())) throw new Error(`${what}: not after ${maxStarts} worker starts`);
}

/** SIGKILLs worker children a failed test left running. */
export async function killWorkerChildren(): Promise<void> {
  await Promise.all(
    [...children].map(async (child) => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }),
  );
}

/** Until a statement other than the caller's waits for a row lock on the jobs table (the row of job `id`). */
export async function waitForRowLockWait(fx: Pick<EngineFixture, 'query'>, id: string): Promise<void> {
  await waitFor(
    `a write of job ${id} to wait for its row`,
    async () => (await fx.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%jobs%' AND pid <> pg_backend_pid()")).length > 0,
    5_000,
    25,
  );
}
