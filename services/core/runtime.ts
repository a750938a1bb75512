import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import type { WorkerEnv } from '../contract';
import { BACKGROUND_BOUNDS, createBatchPool, createGeneralPool, REQUEST_BOUNDS } from './db/pool';
import { answerWithin } from './db/transaction';
import { createFileService } from './files/service';
import type { FileService } from './files/types';
import { createJobAdmin } from './jobs/admin';
import { EventHub } from './jobs/event-hub';
import { API_CANCEL_DELIVERY_WAIT_MS, createJobService, type EngineJobService } from './jobs/service';
import type { SubmitBatchOptions } from './jobs/submit';
import type { JobAdmin } from './jobs/types';
import type { Logger } from './logger';
import type { Metrics } from './metrics';
import { checkMaxmemoryPolicy, createRedisConnection } from './queue/connection';
import { Relay, type RelayOptions } from './queue/relay';
import { createObjectStore, type ObjectStore } from './storage';
import { withTimeout } from './timeout';

export interface RuntimeOptions {
  service: 'api' | 'worker' | 'cli';
  log: Logger;
  metrics?: Metrics;
  /**
   * Run the relay's sweep every RELAY_SWEEP_MS. Off unless asked: the api and the worker
   * turn it on (several sweepers are safe: one at a time holds the sweep lock, and the
   * adds are idempotent); the CLI sweeps once on `reconcile`.
   */
  relaySweep?: boolean;
  /** Relay tuning (tests shorten the grace periods). */
  relay?: Omit<RelayOptions, 'prefix'>;
  /** Submit batching tuning. */
  submit?: SubmitBatchOptions;
  /** Object store override (tests); built from the env otherwise. */
  store?: ObjectStore;
  /** How long reconcile waits between its two looks (tests shorten it). */
  reconcileConfirmMs?: number;
  /**
   * Log a line when a Redis connection fails and when it is back (default). The CLI turns it
   * off: it says in its own answer that Redis is unavailable and why, to a command that
   * needs Redis, and a command that does not should not talk about it.
   */
  logRedisOutages?: boolean;
}

export interface Runtime {
  /** The settings every service shares (the API's own settings are not needed here). */
  env: WorkerEnv;
  log: Logger;
  metrics?: Metrics;
  /** Every statement but the hot batch ones (planned per run): see createGeneralPool. */
  generalPool: Pool;
  /** The hot batch statements only (plans cached per connection, primary-key access): see createBatchPool. */
  batchPool: Pool;
  store: ObjectStore;
  files: FileService;
  jobs: EngineJobService;
  admin: JobAdmin;
  /** Job events as they commit, for live streams; connects on its first subscriber (the API's). */
  events: EventHub;
  relay: Relay;
  redis: {
    /** Fails fast when Redis is away (enqueue path): the job stays queued and the sweep hands it over later. */
    producer: Redis;
    /** Bounded retries: checks, pub/sub publishing, rate limits, CLI. */
    client: Redis;
  };
  /** Reachability of PostgreSQL and Redis: each rejects when its server is down or has not answered within CHECK_TIMEOUT_MS. */
  checks: { postgres(): Promise<void>; redis(): Promise<void> };
  /** Flushes pending submits, stops the sweep, closes the queue, Redis and the pool. Idempotent; every step runs even if one fails. */
  close(): Promise<void>;
}

/**
 * How long a reachability check (readiness, the API's availability probe, doctor) and a
 * QUIT at shutdown wait for their server: one that has not answered by then counts as down,
 * so none of them ever hangs.
 */
const CHECK_TIMEOUT_MS = 2_000;

/** Ends a Redis connection: QUIT when it is up (flushes replies), a plain disconnect otherwise (QUIT would wait for a reconnect). */
async function endRedis(connection: Redis): Promise<void> {
  if (connection.status === 'ready') {
    try {
      await withTimeout(connection.quit(), CHECK_TIMEOUT_MS, `Redis did not answer QUIT within ${CHECK_TIMEOUT_MS} ms`);
      return;
    } catch {
      // Fall through to a hard disconnect.
    }
  }
  connection.disconnect();
}

/** How often a service reads its PostgreSQL pools' connection counts into its metrics. */
const POOL_READING_MS = 5_000;

function recordPoolConnections(metrics: Metrics, pools: Record<'general' | 'batch', Pool>): void {
  for (const [name, pool] of Object.entries(pools)) {
    metrics.dbPoolConnections.set({ pool: name, state: 'total' }, pool.totalCount);
    metrics.dbPoolConnections.set({ pool: name, state: 'idle' }, pool.idleCount);
    metrics.dbPoolConnections.set({ pool: name, state: 'waiting' }, pool.waitingCount);
  }
}

/**
 * The composition root shared by the api, the worker and the CLI: the pools (one for the
 * batch statements, one for everything else), one object store, the Redis connections by
 * role, the relay, and the job and file use cases.
 */
export async function createRuntime(env: WorkerEnv, options: RuntimeOptions): Promise<Runtime> {
  const { log, metrics } = options;
  // The api's statements run while a client waits (its sweep and admin walks go page by page).
  const generalPool = createGeneralPool(env, log, `pk-${options.service}`, options.service === 'api' ? REQUEST_BOUNDS : BACKGROUND_BOUNDS);
  // Connections are opened on first use: a process that runs no batch statement (the CLI) opens none.
  const batchPool = createBatchPool(env, log, `pk-${options.service}`);
  const store = options.store ?? createObjectStore(env, log);
  const outageLog = options.logRedisOutages === false ? undefined : log;
  const producer = createRedisConnection(env.REDIS_URL, 'producer', outageLog);
  const client = createRedisConnection(env.REDIS_URL, 'client', outageLog);
  // Once Redis answers, not before: a Redis down at boot must not keep the service from
  // starting, and is checked when it is back instead of adding a misleading warning to the outage's.
  client.once('ready', () => void checkMaxmemoryPolicy(client, log));

  const relay = new Relay({ connection: producer, generalPool, log, metrics }, { ...options.relay, prefix: env.QUEUE_PREFIX });
  const files = createFileService({ generalPool, store, log, quota: { files: env.QUOTA_FILES, bytes: env.QUOTA_STORED_BYTES } });
  const jobs = createJobService({
    generalPool,
    batchPool,
    files,
    relay,
    publisher: client,
    prefix: env.QUEUE_PREFIX,
    log,
    metrics,
    submit: options.submit,
    // An HTTP client is answered promptly; an operator's CLI reports what Redis did.
    ...(options.service === 'api' && { cancelDeliveryWaitMs: API_CANCEL_DELIVERY_WAIT_MS }),
  });
  const admin = createJobAdmin({ generalPool, relay, log, reconcileConfirmMs: options.reconcileConfirmMs });
  const events = new EventHub({ env, pool: generalPool, log, applicationName: `pk-${options.service}-events` });
  if (options.relaySweep) relay.startSweeper(env.RELAY_SWEEP_MS);
  // The api and the worker both report their pools (platform_db_pool_connections); the CLI passes no metrics.
  const readPools = metrics ? () => recordPoolConnections(metrics, { general: generalPool, batch: batchPool }) : undefined;
  readPools?.();
  const poolReadings = readPools ? setInterval(readPools, POOL_READING_MS).unref() : undefined;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    clearInterval(poolReadings);
    closing ??= (async () => {
      const steps: [string, () => Promise<unknown>][] = [
        ['event hub', () => events.close()],
        ['submit batcher', () => jobs.close()],
        ['relay', () => relay.close()],
        ['redis producer', () => endRedis(producer)],
        ['redis client', () => endRedis(client)],
        ['postgres general pool', () => generalPool.end()],
        ['postgres batch pool', () => batchPool.end()],
      ];
      for (const [name, step] of steps) {
        try {
          await step();
        } catch (error) {
          log.warn({ err: error, step: name }, 'shutdown step failed');
        }
      }
    })();
    return closing;
  };

  return {
    env,
    log,
    metrics,
    generalPool,
    batchPool,
    store,
    files,
    jobs,
    admin,
    events,
    relay,
    redis: { producer, client },
    checks: {
      async postgres() {
        // Past the deadline the connection is dropped, not waited on: checks of a hung server
        // (readiness every few seconds, the API's probe every second) must not pile up in the pool.
        await answerWithin(generalPool, CHECK_TIMEOUT_MS, (connection) => connection.query('SELECT 1'));
      },
      async redis() {
        try {
          await withTimeout(client.ping(), CHECK_TIMEOUT_MS, `Redis did not answer within ${CHECK_TIMEOUT_MS} ms`);
          metrics?.redisUp.set(1);
        } catch (error) {
          metrics?.redisUp.set(0);
          throw error;
        }
      },
    },
    close,
  };
}
