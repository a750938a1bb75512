import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { WorkerEnvSchema, parseEnv } from '../../../services/contract';
import type { Liveness } from '../../../services/worker/liveness';
import { startHealthServer, type HealthServer } from '../../../services/worker/health';
import { startWorkerProcess, type WorkerProcess } from '../../../services/worker/main';
import type { JobRunner } from '../../../services/worker/runner';
import { findFreePort } from '../../harness/free-port';
import { startRedis, type RedisServer } from '../../harness/redis';
import { useSharedServices } from '../../harness/shared';
import { createEngineFixture, statusOf, submission, waitFor, type EngineFixture } from './fixture';

/** How long the loop may be silent in these tests (30 s in the worker). */
const MAX_SILENCE_MS = 1_500;

/**
 * A TCP relay in front of Redis that can freeze the connections it carries while new ones
 * still get through: a connection of the worker's that hangs (a half-open socket) while
 * Redis serves everyone else.
 */
async function startRelay(redisPort: number): Promise<{ url: string; freezeExisting(): void; thaw(): void; close(): Promise<void> }> {
  const pairs: [Socket, Socket][] = [];
  const server: Server = createServer((client) => {
    const upstream = connect(redisPort, '127.0.0.1');
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    pairs.push([client, upstream]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const frozen: [Socket, Socket][] = [];
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    freezeExisting() {
      for (const pair of pairs.splice(0)) {
        for (const socket of pair) {
          socket.unpipe();
          socket.pause();
        }
        frozen.push(pair);
      }
    },
    thaw() {
      // A frozen connection's bytes are lost with it: end them, as a failover would, and let the clients reconnect.
      for (const [client, upstream] of frozen.splice(0)) {
        client.destroy();
        upstream.destroy();
      }
    },
    async close() {
      for (const pair of [...pairs, ...frozen]) for (const socket of pair) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Every answer the runner gives over `ms`, in order, without repeats. */
async function livenessOver(runner: JobRunner, ms: number): Promise<Liveness[]> {
  const seen: Liveness[] = [];
  for (const until = Date.now() + ms; Date.now() < until; await new Promise((resolve) => setTimeout(resolve, 50))) {
    const now = runner.liveness(MAX_SILENCE_MS);
    if (seen.at(-1) !== now) seen.push(now);
  }
  return seen;
}

describe('worker liveness: a silent loop fails /healthz only when a restart would help', () => {
  let redis: RedisServer;
  let fx: EngineFixture | undefined;
  let health: HealthServer | undefined;
  let workerProcess: WorkerProcess | undefined;

  beforeEach(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    await workerProcess?.stop();
    workerProcess = undefined;
    await health?.close();
    await fx?.close();
    await redis.destroy();
    health = undefined;
    fx = undefined;
  });

  async function startWorker(redisUrl: string, prefix: string): Promise<{ runner: JobRunner; healthz: () => Promise<{ status: number; body: unknown }> }> {
    const shared = await useSharedServices();
    fx = await createEngineFixture({ servers: { databaseUrl: shared.databaseUrl, redisUrl, redisPrefix: prefix } });
    const runner = await fx.startRunner({ livenessProbeMs: 200 });
    health = await startHealthServer({ port: 0, host: '127.0.0.1', registry: new Registry(), liveness: () => runner.liveness(MAX_SILENCE_MS), readiness: async () => ({ status: 'ready' }) });
    const url = `http://127.0.0.1:${health.port}/healthz`;
    return {
      runner,
      healthz: async () => {
        const response = await fetch(url);
        return { status: response.status, body: await response.json() };
      },
    };
  }

  it('while Redis answers no one it reports waiting for redis (200), never stuck, and alive again once Redis is back', async () => {
    const { runner, healthz } = await startWorker(redis.url, '{liveness-outage}');
    expect(await healthz()).toEqual({ status: 200, body: { status: 'alive' } });

    redis.pause();
    let during: Liveness[];
    try {
      await waitFor('the loop to fall silent', async () => runner.liveness(MAX_SILENCE_MS) !== 'alive', 10_000);
      during = await livenessOver(runner, 2 * MAX_SILENCE_MS);
      expect(await healthz()).toEqual({ status: 200, body: { status: 'waiting for redis' } });
    } finally {
      redis.resume();
    }
    expect(during).toEqual(['waiting for redis']);
    await waitFor('the loop to move again', async () => runner.liveness(MAX_SILENCE_MS) === 'alive', 20_000);
    expect(await healthz()).toEqual({ status: 200, body: { status: 'alive' } });
  });

  it('stuck on a connection of its own while Redis answers new ones, it reports stuck (503)', async () => {
    const relay = await startRelay(redis.port);
    try {
      const { runner, healthz } = await startWorker(relay.url, '{liveness-stuck}');
      expect(runner.liveness(MAX_SILENCE_MS)).toBe('alive');

      relay.freezeExisting();
      await waitFor('the loop to be found stuck', async () => runner.liveness(MAX_SILENCE_MS) === 'stuck', 10_000);
      expect(await livenessOver(runner, MAX_SILENCE_MS)).toEqual(['stuck']);
      expect(await healthz()).toEqual({ status: 503, body: { status: 'stuck' } });
      relay.thaw();
    } finally {
      await fx?.close();
      fx = undefined;
      await relay.close();
    }
  });

  it('a running worker that Redis stops answering is not ready (503 waiting for redis) yet alive, and ready again once Redis answers', async () => {
    const shared = await useSharedServices();
    fx = await createEngineFixture({ servers: { databaseUrl: shared.databaseUrl, redisUrl: redis.url, redisPrefix: '{readiness-outage}' } });
    const port = await findFreePort();
    const env = parseEnv(
      { DATABASE_URL: fx.env.DATABASE_URL, REDIS_URL: fx.env.REDIS_URL, QUEUE_PREFIX: fx.env.QUEUE_PREFIX, OBJECT_STORE_DIR: fx.env.OBJECT_STORE_DIR, WORKER_METRICS_PORT: String(port), LOG_LEVEL: 'silent' },
      WorkerEnvSchema,
    );
    workerProcess = await startWorkerProcess(env, { exitOnSignal: false, livenessMaxSilenceMs: MAX_SILENCE_MS, runner: { livenessProbeMs: 200 } });
    const probe = async (path: string) => {
      const response = await fetch(`http://127.0.0.1:${port}${path}`);
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    expect(await probe('/readyz')).toEqual({ status: 200, body: { status: 'ready' } });

    redis.pause();
    try {
      const ready = await probe('/readyz');
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({ status: 'waiting for redis', detail: expect.any(String) });
      // Liveness is another question: a restart would not bring Redis back.
      expect((await probe('/healthz')).status).toBe(200);
    } finally {
      redis.resume();
    }
    await waitFor('readiness to come back', async () => (await probe('/readyz')).status === 200, 20_000);
    expect(await probe('/readyz')).toEqual({ status: 200, body: { status: 'ready' } });
  });

  it('a worker that starts while Redis is down waits for it (live, waiting for redis; not ready), then starts and runs jobs', async () => {
    const shared = await useSharedServices();
    fx = await createEngineFixture({ servers: { databaseUrl: shared.databaseUrl, redisUrl: redis.url, redisPrefix: '{liveness-start}' } });
    const port = await findFreePort();
    const env = parseEnv(
      { DATABASE_URL: fx.env.DATABASE_URL, REDIS_URL: fx.env.REDIS_URL, QUEUE_PREFIX: fx.env.QUEUE_PREFIX, OBJECT_STORE_DIR: fx.env.OBJECT_STORE_DIR, WORKER_METRICS_PORT: String(port), LOG_LEVEL: 'silent' },
      WorkerEnvSchema,
    );
    const probe = async (path: string) => {
      const response = await fetch(`http://127.0.0.1:${port}${path}`);
      return { status: response.status, body: (await response.json()) as unknown };
    };
    // A job accepted meanwhile, waiting in PostgreSQL: the backlog the worker's metrics must show while it waits.
    await fx.query("INSERT INTO jobs (id, owner_id, type, input, status, max_attempts, updated_at) VALUES (gen_random_uuid(), $1, 'echo', '{}', 'queued', 3, now() - interval '10 minutes')", [fx.ownerId]);
    await redis.stop();
    const starting = startWorkerProcess(env, { exitOnSignal: false, livenessMaxSilenceMs: MAX_SILENCE_MS, refreshMs: 500, runner: { livenessProbeMs: 200 } }).then((started) => {
      workerProcess = started;
      return started;
    });
    try {
      await waitFor('the health listener', async () => (await probe('/healthz').catch(() => undefined)) !== undefined, 10_000);
      // Past the silence liveness allows, the worker still answers 200 and says why it waits.
      await new Promise((resolve) => setTimeout(resolve, 2 * MAX_SILENCE_MS));
      expect(await probe('/healthz')).toEqual({ status: 200, body: { status: 'waiting for redis' } });
      expect((await probe('/readyz')).status).toBe(503);
      expect(workerProcess).toBeUndefined();
      // What PostgreSQL holds is measured all the same (JobBacklogAging, DeadLetterGrowing), and Redis is reported down.
      const exported = await waitFor('the backlog and dead letters among the metrics', async () => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return /^platform_queue_oldest_job_age_seconds\{[^}]*\} \d/m.test(text) && /^platform_dead_letter_jobs\{[^}]*\} \d/m.test(text) && text;
      });
      expect(Number(/^platform_queue_oldest_job_age_seconds\{[^}]*\} (\S+)/m.exec(exported)?.[1])).toBeGreaterThanOrEqual(600);
      expect(exported).toMatch(/^platform_redis_up\{[^}]*\} 0$/m);
    } finally {
      await redis.start();
    }
    await starting;
    expect(await probe('/readyz')).toEqual({ status: 200, body: { status: 'ready' } });
    const engine = fx;
    const { job } = await engine.core.jobs.submit(submission({ ownerId: engine.ownerId, type: 'echo', input: { payload: 'after the wait' } }));
    await waitFor('the job to succeed', async () => (await statusOf(engine, job.id)) === 'succeeded', 20_000);
  });
});
