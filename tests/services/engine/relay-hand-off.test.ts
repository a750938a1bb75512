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
import { Relay, type RelayOptions } from '../../../services/core/queue/relay';
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

  const rows = (count: number) => Array.from({ length: count }, () => ({ id: randomUUID(), type: 'echo', priority: 0 }));

  async function held(target: Relay, ids: string[]): Promise<number> {
    const jobs = await Promise.all(ids.map((id) => target.queue.getJob(id)));
    return jobs.filter((job) => job?.data.jobId !== undefined).length;
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
});
