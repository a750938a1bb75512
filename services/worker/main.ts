import type { Redis } from 'ioredis';
import type { WorkerEnv } from '../contract';
import { loadEnv } from '../core/config';
import { DataStoreMetrics } from '../core/datastore-metrics';
import { countDeadLetters } from '../core/db/jobs';
import { SessionRepository } from '../core/db/sessions';
import { queueDepth } from '../core/jobs/admin';
import { createLogger } from '../core/logger';
import { createMetrics } from '../core/metrics';
import { createRuntime, type RuntimeOptions } from '../core/runtime';
import { workerHeartbeatKey } from '../core/queue/keys';
import { QUEUES, QUEUE_DEPTH_STATES, WORKER_HEARTBEAT_FORGET_MS } from '../contract';
import { startHealthServer, type HealthServer } from './health';
import { JobRunner, type RunnerDeps, type RunnerOptions } from './runner';
import { createMailDrop, createSmtpMailDrop } from './mail-drop';
import { memoryBudgets, memoryLimitBytes } from './memory-budgets';
import { startRetentionPurge } from './retention';
import { createJobRemoval } from '../core/jobs/removal';
import { WorkerSlots } from '../core/queue/worker-slots';
import { SlotCheck } from './slot-check';

export interface WorkerProcessOptions {
  /** Runner tuning beyond the env (tests shorten lock and stall settings). */
  runner?: Omit<RunnerOptions, 'redisUrl' | 'prefix' | 'concurrency'>;
  relay?: RuntimeOptions['relay'];
  /** Processor lookup; the built-in registry unless a test wraps it. */
  processors?: RunnerDeps['processors'];
  /** /healthz fails when the worker loop has been silent this long while Redis answers others. Default 30 s (above BullMQ's 10 s longest blocking wait). */
  livenessMaxSilenceMs?: number;
  /** How often queue depth, the dead-letter size and the Redis heartbeat are refreshed. Default 5 s. */
  refreshMs?: number;
  /** Exit the process after a signal-triggered shutdown. Default true. */
  exitOnSignal?: boolean;
}

export interface WorkerProcess {
  runner: JobRunner;
  health: HealthServer;
  /** Drains and closes everything (what SIGTERM does, without exiting). Idempotent. */
  stop(): Promise<void>;
}

async function pruneHeartbeats(redis: Redis, key: string): Promise<void> {
  const heartbeats = await redis.hgetall(key);
  const stale = Object.entries(heartbeats)
    .filter(([, at]) => Date.now() - Number(at) > WORKER_HEARTBEAT_FORGET_MS)
    .map(([workerId]) => workerId);
  if (stale.length > 0) await redis.hdel(key, ...stale);
}

/**
 * The worker process: runtime, job runner, relay sweep, health listener, Redis
 * heartbeat for `platform doctor`, and graceful shutdown on SIGTERM/SIGINT.
 */
export async function startWorkerProcess(env: WorkerEnv, options: WorkerProcessOptions = {}): Promise<WorkerProcess> {
  const log = createLogger({ service: env.SERVICE_NAME ?? 'worker', level: env.LOG_LEVEL });
  // A promise nobody awaited that rejects (a fire-and-forget write, a library's stray
  // promise) is a bug to log, not a reason to drop every job this process is running:
  // Node's default would exit, and each in-flight job would wait out its lock to be redelivered.
  process.on('unhandledRejection', (reason) => {
    log.error({ err: reason }, 'unhandled promise rejection; the worker keeps running');
  });
  const metrics = createMetrics(env.SERVICE_NAME ?? 'worker');
  const core = await createRuntime(env, { service: 'worker', log, metrics, relaySweep: true, relay: options.relay });
  const limitBytes = memoryLimitBytes();
  const { budgets, source } = memoryBudgets(limitBytes, { inputBudgetBytes: env.WORKER_INPUT_BUDGET_BYTES, fileMemoryBudgetBytes: env.WORKER_FILE_MEMORY_BUDGET_BYTES });
  log.info({ ...budgets, memoryLimitBytes: limitBytes ?? null, source }, `memory budgets: ${source}`);
  const runner = new JobRunner(
    {
      batchPool: core.batchPool,
      generalPool: core.generalPool,
      files: core.files,
      store: core.store,
      log,
      metrics,
      processors: options.processors,
      mailDrop: env.SMTP_URL ? createSmtpMailDrop(env.SMTP_URL, env.MAIL_FROM) : createMailDrop(core.store, env.MAIL_FROM),
      relay: core.relay,
    },
    {
      ...options.runner,
      redisUrl: env.REDIS_URL,
      prefix: env.QUEUE_PREFIX,
      concurrency: env.WORKER_CONCURRENCY,
      ...budgets,
      jobsRunningPerUser: env.JOBS_RUNNING_PER_USER,
      ...(env.WORKER_SLOT ? { slot: env.WORKER_SLOT } : {}),
    },
  );
  const maxSilenceMs = options.livenessMaxSilenceMs ?? 30_000;
  let ready = false;
  let draining = false;
  const health = await startHealthServer({
    port: env.WORKER_METRICS_PORT,
    registry: metrics.registry,
    liveness: () => runner.liveness(maxSilenceMs),
    async readiness() {
      if (draining) return { status: 'draining' };
      if (!ready) return { status: 'starting' };
      // A worker that Redis does not answer takes no job, whatever its own connection's state
      // (a paused or partitioned server keeps it open): a rollout must not count it as
      // serving. It stays alive meanwhile (/healthz), so nothing restarts it for the outage.
      try {
        await core.checks.redis();
        return { status: 'ready' };
      } catch (error) {
        return { status: 'waiting for redis', detail: error instanceof Error ? error.message : String(error) };
      }
    },
  });
  const heartbeatKey = workerHeartbeatKey(env.QUEUE_PREFIX);
  const dataStores = new DataStoreMetrics({ generalPool: core.generalPool, redis: core.redis.client, metrics });
  metrics.workerConcurrency.set(env.WORKER_CONCURRENCY);
  const slotCheck = new SlotCheck(runner, new WorkerSlots(core.redis.client, env.QUEUE_PREFIX), log);
  // What PostgreSQL holds (the backlog, the dead letters) and Redis's own check, refreshed from
  // the start: the runner waits for Redis, and a worker started during a Redis outage must
  // still show the backlog piling up (JobBacklogAging) and the dead letters (DeadLetterGrowing).
  const refreshStores = async () => {
    await Promise.all([dataStores.refresh(), countDeadLetters(core.generalPool).then((count) => metrics.deadLetterSize.set(count))]);
  };
  const refresh = async () => {
    // Independent of the steps below, so a Redis outage still shows as platform_redis_up 0.
    const stores = refreshStores().catch((error: unknown) => log.debug({ err: error }, 'data store metrics refresh failed'));
    if (ready) {
      if (runner.isAlive(maxSilenceMs)) await core.redis.client.hset(heartbeatKey, runner.id, Date.now());
      await pruneHeartbeats(core.redis.client, heartbeatKey);
      await slotCheck.refresh();
      const depth = await queueDepth(core.relay);
      for (const state of QUEUE_DEPTH_STATES) metrics.queueDepth.set({ queue: QUEUES.jobs, state }, depth[state]);
    }
    await stores;
  };
  const refreshTimer = setInterval(() => {
    refresh().catch((error: unknown) => log.debug({ err: error }, 'worker metrics refresh failed'));
  }, options.refreshMs ?? 5_000);
  refreshTimer.unref();
  void refresh().catch(() => undefined);
  try {
    await runner.start();
  } catch (error) {
    clearInterval(refreshTimer);
    throw error;
  }
  ready = true;
  void refresh().catch(() => undefined);
  const purge = startRetentionPurge(
    { jobs: createJobRemoval({ generalPool: core.generalPool, store: core.store, log }), credentials: new SessionRepository(core.generalPool) },
    env,
    log,
  );

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // Readiness fails first, so nothing new is routed here while we drain.
      draining = true;
      clearInterval(refreshTimer);
      purge.stop();
      await runner.stop(env.SHUTDOWN_GRACE_MS);
      await core.redis.client.hdel(heartbeatKey, runner.id).catch(() => undefined);
      await health.close();
      await core.close();
      log.flush();
    })();
    return stopping;
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'already shutting down');
      return;
    }
    log.info({ signal }, 'shutting down');
    stop().then(
      () => options.exitOnSignal !== false && process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        if (options.exitOnSignal !== false) process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  log.info({ metricsPort: health.port, concurrency: env.WORKER_CONCURRENCY }, 'worker ready');
  return { runner, health, stop };
}

if (require.main === module) {
  startWorkerProcess(loadEnv('worker')).catch((error: unknown) => {
    process.stderr.write(`worker: failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
