/**
 * platform_relay_lag_seconds is measured by whichever process holds the sweep lock. Each
 * process exports only its own fresh measurement: one that stops winning the lock drops its
 * series instead of repeating its last value, which kept `max()` in RelayLagHigh paging (or
 * silent) on its behalf. When Redis cannot be asked, the unconfirmed jobs' age is the lag.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { METRICS } from '../../../services/contract';
import { createMetrics, type Metrics } from '../../../services/core/metrics';
import { createRedisConnection } from '../../../services/core/queue/connection';
import { Relay, SWEEP_LOCK_KEY } from '../../../services/core/queue/relay';
import { findFreePort } from '../../harness/free-port';
import { createEngineFixture, type EngineFixture } from './fixture';

const FRESH_MS = 1_000;

/** The samples of the relay lag a process's /metrics would carry (none, or one). */
async function exportedLag(metrics: Metrics): Promise<number[]> {
  const text = await metrics.registry.getSingleMetricAsString(METRICS.relayLag);
  return text
    .split('\n')
    .filter((line) => line.startsWith(METRICS.relayLag))
    .map((line) => Number(line.split(' ').pop()));
}

describe('relay lag: exported by the process that measured it, while fresh', () => {
  let fx: EngineFixture;
  const relays: Relay[] = [];

  beforeEach(async () => {
    fx = await createEngineFixture({ core: { relay: { sweepGraceMs: 300, lostRunningAfterMs: 3_000, lagFreshForMs: FRESH_MS } } });
  });
  afterEach(async () => {
    await Promise.all(relays.splice(0).map((relay) => relay.close()));
    await fx?.close();
  });

  /** A second api or worker process: its own relay and its own metrics, on the same PostgreSQL and Redis. */
  function otherProcess(connection: Redis = createRedisConnection(fx.env.REDIS_URL, 'producer')): { relay: Relay; metrics: Metrics } {
    const metrics = createMetrics('other');
    const relay = new Relay({ connection, generalPool: fx.core.generalPool, log: fx.log, metrics }, { prefix: fx.env.QUEUE_PREFIX, sweepGraceMs: 300, lagFreshForMs: FRESH_MS });
    relays.push(relay);
    const close = relay.close.bind(relay);
    relay.close = async () => {
      await close();
      if (connection.status !== 'end') connection.disconnect();
    };
    return { relay, metrics };
  }

  /** A queued row committed a minute ago that never reached Redis. */
  async function lostJob(): Promise<string> {
    const id = randomUUID();
    await fx.query("INSERT INTO jobs (id, owner_id, type, input, status, max_attempts, updated_at) VALUES ($1, $2, 'echo', '{}', 'queued', 3, now() - interval '1 minute')", [id, fx.ownerId]);
    return id;
  }

  it('a process that stops winning the sweep lock drops its lag instead of repeating it', async () => {
    const a = { relay: fx.core.relay, metrics: fx.core.metrics as Metrics };
    const b = otherProcess();
    expect(await exportedLag(b.metrics)).toEqual([]);

    const lost = await lostJob();
    expect((await a.relay.sweep()).ran).toBe(true);
    const [measured] = await exportedLag(a.metrics);
    expect(measured).toBeGreaterThanOrEqual(59);
    // b measured nothing: it says nothing (an exported 0 would be a claim it cannot make).
    expect(await exportedLag(b.metrics)).toEqual([]);

    // From now on a loses the lock to someone else at every try, while b sweeps, hands the job over and measures 0.
    const holder = new Client({ connectionString: fx.env.DATABASE_URL });
    await holder.connect();
    try {
      await b.relay.sweep();
      await b.relay.sweep();
      expect((await fx.core.relay.queue.getJob(lost))?.id).toBe(lost);
      await holder.query('SELECT pg_advisory_lock($1)', [SWEEP_LOCK_KEY]);
      expect((await a.relay.sweep()).ran).toBe(false);
      await holder.query('SELECT pg_advisory_unlock($1)', [SWEEP_LOCK_KEY]);
      expect((await b.relay.sweep()).lagSeconds).toBe(0);
      expect(await exportedLag(b.metrics)).toEqual([0]);

      await delay(FRESH_MS + 200);
      await holder.query('SELECT pg_advisory_lock($1)', [SWEEP_LOCK_KEY]);
      expect((await a.relay.sweep()).ran).toBe(false);
      expect(await exportedLag(a.metrics)).toEqual([]);
    } finally {
      await holder.end();
    }
  });

  it('with Redis unreachable, the age of the jobs it cannot confirm is the lag', async () => {
    await lostJob();
    // A Redis nothing answers on, tried once (the relay's own connections retry forever).
    const dead = new Redis(`redis://127.0.0.1:${await findFreePort()}`, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const ended = new Promise((resolve) => dead.once('end', resolve));
    dead.on('error', () => undefined);
    const unreachable = otherProcess(dead);
    await ended;
    await expect(unreachable.relay.sweep()).rejects.toThrow(/Redis could not be asked which queued jobs it holds/);
    const [lag] = await exportedLag(unreachable.metrics);
    expect(lag).toBeGreaterThanOrEqual(59);
  });
});
