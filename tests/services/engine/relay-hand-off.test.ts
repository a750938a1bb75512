/**
 * The submit path's hand-off to BullMQ: rows committed close together go to Redis in one
 * addBulk, nobody waits for it, a stop hands over what is still waiting, and a backlog
 * that cannot drain (Redis slow or away) is left to the sweep instead of growing.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { createRedisConnection } from '../../../services/core/queue/connection';
import { readJobStates } from '../../../services/core/queue/job-states';
import { SHARED_ENTRY_ID_PREFIX } from '../../../services/core/queue/keys';
import { Relay, type RelayOptions } from '../../../services/core/queue/relay';
import { startRedis } from '../../harness/redis';
import { createEngineFixture, type EngineFixture } from './fixture';

describe('relay hand-off', () => {
  let fx: EngineFixture;
  let connection: Redis;
  let relay: Relay | undefined;

  beforeAll(async () => {
    fx = await createEngineFixture();
  });
  afterAll(async () => {
    await fx?.close();
  });
  afterEach(async () => {
    await relay?.close();
    relay = undefined;
    connection?.disconnect();
  });

  function startRelay(options: Omit<RelayOptions, 'prefix'>): { relay: Relay; addBulkSizes: number[] } {
    connection = createRedisConnection(fx.env.REDIS_URL, 'producer');
    relay = new Relay({ connection, generalPool: fx.core.generalPool, log: fx.log }, { prefix: `${fx.env.QUEUE_PREFIX}-hand-off-${randomUUID()}`, ...options });
    const addBulkSizes: number[] = [];
    const addBulk = relay.queue.addBulk.bind(relay.queue);
    relay.queue.addBulk = (jobs) => {
      addBulkSizes.push(jobs.length);
      return addBulk(jobs);
    };
    return { relay, addBulkSizes };
  }

  // sleep jobs have an entry each (jobsPerQueueEntry 1), so an addBulk's size counts rows.
  const rows = (count: number, type = 'sleep') => Array.from({ length: count }, () => ({ id: randomUUID(), type, priority: 0 }));

  async function held(target: Relay, ids: string[]): Promise<number> {
    const states = await readJobStates(connection as Redis, (target.queue.opts.prefix as string), ids);
    return [...states.values()].filter((state) => state === 'held').length;
  }

  it('gathers the rows of several submit batches within its window into one addBulk', async () => {
    const { relay: subject, addBulkSizes } = startRelay({ handOffWindowMs: 50 });
    const batches = [rows(2), rows(1), rows(3)];
    for (const batch of batches) subject.handOff(batch);
    expect(addBulkSizes).toEqual([]);
    await delay(300);
    expect(addBulkSizes).toEqual([6]);
    expect(await held(subject, batches.flat().map((row) => row.id))).toBe(6);
  });

  it('hands each batch over on its own with a window of 0', async () => {
    const { relay: subject, addBulkSizes } = startRelay({ handOffWindowMs: 0 });
    const first = rows(2);
    subject.handOff(first);
    await delay(100);
    const second = rows(1);
    subject.handOff(second);
    await delay(100);
    expect(addBulkSizes).toEqual([2, 1]);
    expect(await held(subject, [...first, ...second].map((row) => row.id))).toBe(3);
  });

  it('hands over what is still waiting when it closes', async () => {
    const { relay: subject } = startRelay({ handOffWindowMs: 60_000 });
    const waiting = rows(4);
    subject.handOff(waiting);
    await subject.close();
    const queue = new Queue(subject.queue.name, { connection, prefix: subject.queue.opts.prefix });
    try {
      const found = await Promise.all(waiting.map((row) => queue.getJob(row.id)));
      expect(found.map((job) => job?.data)).toEqual(waiting.map((row) => ({ jobId: row.id })));
    } finally {
      await queue.close();
    }
  });

  it('leaves rows past its backlog limit to the sweep instead of holding them, and says so once', async () => {
    const { relay: subject, addBulkSizes } = startRelay({ handOffWindowMs: 200, maxWaitingHandOffs: 3 });
    const warn = jest.spyOn(fx.log, 'warn');
    const kept = rows(3);
    const leftToSweep = rows(2);
    subject.handOff(kept);
    subject.handOff(leftToSweep.slice(0, 1));
    subject.handOff(leftToSweep.slice(1));
    const warnings = warn.mock.calls.filter(([, message]) => String(message).includes('hand-off backlog full')).length;
    warn.mockRestore();
    expect(warnings).toBe(1);
    await delay(500);
    expect(addBulkSizes).toEqual([3]);
    expect(await held(subject, kept.map((row) => row.id))).toBe(3);
    expect(await held(subject, leftToSweep.map((row) => row.id))).toBe(0);
  });

  it('says once that enqueues fail while Redis is away, however many batches fail, and how many once one succeeds again', async () => {
    const redis = await startRedis();
    const warn = jest.spyOn(fx.log, 'warn');
    const info = jest.spyOn(fx.log, 'info');
    const said = (spy: jest.SpyInstance, start: string) => spy.mock.calls.filter(([, message]) => String(message).startsWith(start));
    try {
      connection = createRedisConnection(redis.url, 'producer');
      relay = new Relay({ connection, generalPool: fx.core.generalPool, log: fx.log }, { prefix: `${fx.env.QUEUE_PREFIX}-outage-${randomUUID()}`, enqueueTimeoutMs: 500 });
      await relay.queue.waitUntilReady();
      for (let outage = 1; outage <= 2; outage += 1) {
        await redis.stop();
        for (let batch = 0; batch < 20; batch += 1) expect(await relay.enqueue(rows(2))).toBe(0);
        await redis.start();
        let enqueued = 0;
        for (const deadline = Date.now() + 20_000; enqueued === 0 && Date.now() < deadline; await delay(100)) enqueued = await relay.enqueue(rows(1));
        expect(enqueued).toBe(1);
        // One warning per outage, not one per batch; the recovery counts what failed in it.
        expect(said(warn, 'enqueue failed')).toHaveLength(outage);
        const recovered = said(info, 'enqueue succeeds again');
        expect(recovered).toHaveLength(outage);
        const { failedBatches, failedJobs } = recovered[outage - 1]?.[0] as { failedBatches: number; failedJobs: number };
        expect(failedBatches).toBeGreaterThanOrEqual(20);
        expect(failedJobs).toBe(40 + (failedBatches - 20));
      }
    } finally {
      warn.mockRestore();
      info.mockRestore();
      await relay?.close();
      relay = undefined;
      await redis.destroy();
    }
  }, 90_000);

  it('puts jobs of a type that shares entries up to jobsPerQueueEntry in one, by type and priority, and the sweep finds each job in its entry', async () => {
    const { relay: subject, addBulkSizes } = startRelay({ handOffWindowMs: 50 });
    const echoes = rows(23, 'echo');
    const urgent = rows(2, 'echo').map((row) => ({ ...row, priority: 5 }));
    const sleeps = rows(2);
    subject.handOff([...echoes.slice(0, 12), ...sleeps, ...urgent, ...echoes.slice(12)]);
    await delay(300);
    // 23 echo jobs in entries of 10, 10 and 3; the two urgent ones together; a sleep job each.
    expect(addBulkSizes).toEqual([3 + 1 + 2]);
    const all = [...echoes, ...urgent, ...sleeps].map((row) => row.id);
    expect(await held(subject, all)).toBe(all.length);

    const first = await subject.queue.getJob(`${SHARED_ENTRY_ID_PREFIX}${echoes[0]?.id}`);
    expect(first?.data).toEqual({ jobIds: echoes.slice(0, 10).map((row) => row.id) });
    const urgentEntry = await subject.queue.getJob(`${SHARED_ENTRY_ID_PREFIX}${urgent[0]?.id}`);
    expect(urgentEntry?.opts.priority).toBe(5);
    expect(await subject.queue.getJob(sleeps[0]?.id as string)).toMatchObject({ data: { jobId: sleeps[0]?.id } });

    // Once the entry is done with its jobs (each finished or queued on its own), the map forgets them and they count as missing.
    await subject.forgetSharedEntry(echoes.slice(0, 10).map((row) => row.id));
    await first?.remove();
    const states = await readJobStates(connection, subject.queue.opts.prefix as string, echoes.slice(0, 11).map((row) => row.id));
    expect([...states.values()]).toEqual([...Array<string>(10).fill('missing'), 'held']);
  });

  it('reports a job as its shared entry stands: finished once the entry completed and before the map forgot it', async () => {
    const { relay: subject } = startRelay({ handOffWindowMs: 0 });
    const echoes = rows(3, 'echo');
    await subject.queue.waitUntilReady();
    expect(await subject.enqueue(echoes, 'submit')).toBe(3);
    // What BullMQ writes on the entry's hash when it completes (kept here by retention).
    await connection.hset(`${subject.queue.opts.prefix}:${subject.queue.name}:${SHARED_ENTRY_ID_PREFIX}${echoes[0]?.id}`, 'finishedOn', Date.now());
    const states = await readJobStates(connection, subject.queue.opts.prefix as string, echoes.map((row) => row.id));
    expect([...states.values()]).toEqual(['finished', 'finished', 'finished']);
    // A job queued again gets an entry of its own, which the lookup prefers to the shared one.
    expect(await subject.requeue([echoes[1] as (typeof echoes)[number]])).toBe(1);
    expect((await readJobStates(connection, subject.queue.opts.prefix as string, [echoes[1]?.id as string])).get(echoes[1]?.id as string)).toBe('held');
    expect(await subject.queue.getJob(echoes[1]?.id as string)).toMatchObject({ data: { jobId: echoes[1]?.id } });
  });
});
