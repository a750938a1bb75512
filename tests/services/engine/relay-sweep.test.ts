/**
 * A sweep checks at most sweepMaxRows queued rows, so a huge backlog costs a bounded
 * sweep. The next sweep goes on from where the last one stopped: a lost job behind a
 * backlog larger than that is still found and handed over, and the lag counts it.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { createRedisConnection } from '../../../services/core/queue/connection';
import { Relay, SWEEP_LOCK_KEY } from '../../../services/core/queue/relay';
import { startRedis } from '../../harness/redis';
import { createEngineFixture, type EngineFixture } from './fixture';

describe('relay sweep over a backlog larger than one sweep checks', () => {
  let fx: EngineFixture;

  beforeEach(async () => {
    // Pages of 2 rows, at most 3 rows per sweep: each sweep reads two pages (4 rows).
    fx = await createEngineFixture({ core: { relay: { sweepGraceMs: 300, lostRunningAfterMs: 3_000, sweepPageSize: 2, sweepMaxRows: 3 } } });
  });
  afterEach(async () => {
    await fx?.close();
  });

  /** Queued rows committed minutes ago, oldest first, that never reached Redis. */
  async function lostJobs(count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let index = 0; index < count; index += 1) {
      const id = randomUUID();
      await fx.query(
        "INSERT INTO jobs (id, owner_id, type, input, status, max_attempts, updated_at) VALUES ($1, $2, 'echo', '{}', 'queued', 3, now() - interval '10 minutes' + $3::int * interval '1 second')",
        [id, fx.ownerId, index],
      );
      ids.push(id);
    }
    return ids;
  }

  /** The relay sweep's lines in the fixture's log: the first failure of a run, those counted after it, and each recovery's fields. */
  function sweepLog() {
    const warn = jest.spyOn(fx.log, 'warn');
    const debug = jest.spyOn(fx.log, 'debug');
    const info = jest.spyOn(fx.log, 'info');
    return {
      warned: () => warn.mock.calls.filter(([, message]) => String(message).startsWith('relay sweep failed')),
      counted: () => debug.mock.calls.filter(([, message]) => message === 'relay sweep failed'),
      recovered: () => info.mock.calls.filter(([, message]) => message === 'relay sweep succeeds again').map(([fields]) => fields as { failedSweeps: number }),
      restore: () => {
        warn.mockRestore();
        debug.mockRestore();
        info.mockRestore();
      },
    };
  }

  /** Running rows whose last move was `minutesAgo` (oldest first), each with a queue entry in Redis when `held`. */
  async function staleRunningJobs(count: number, { held, minutesAgo }: { held: boolean; minutesAgo: number }): Promise<string[]> {
    const ids: string[] = [];
    for (let index = 0; index < count; index += 1) {
      const id = randomUUID();
      await fx.query(
        "INSERT INTO jobs (id, owner_id, type, input, status, attempts, max_attempts, started_at, updated_at) VALUES ($1, $2, 'echo', '{}', 'running', 1, 3, now() - $3::int * interval '1 minute', now() - $3::int * interval '1 minute' + $4::int * interval '1 second')",
        [id, fx.ownerId, minutesAgo, index],
      );
      ids.push(id);
    }
    if (held) await fx.core.relay.enqueue(ids.map((id) => ({ id, type: 'echo', priority: 0 })));
    return ids;
  }

  async function inRedis(ids: string[]): Promise<string[]> {
    const found = await Promise.all(ids.map(async (id) => ((await fx.core.relay.queue.getJob(id)) ? id : undefined)));
    return found.filter((id): id is string => id !== undefined);
  }

  it('hands over every lost row in turn, each once, and reports the oldest one as the lag meanwhile', async () => {
    const ids = await lostJobs(6);
    const reports = [];
    for (let sweep = 1; sweep <= 6; sweep += 1) reports.push(await fx.core.relay.sweep());

    expect(reports.map((report) => report.ran)).toEqual([true, true, true, true, true, true]);
    // Pass 1 notes rows 1-4, then 5-6; pass 2 finds them missing again and hands them over; pass 3 finds them held.
    expect(reports.map((report) => report.checked)).toEqual([4, 2, 4, 2, 4, 2]);
    expect(reports.map((report) => report.pending)).toEqual([4, 2, 0, 0, 0, 0]);
    expect(reports.map((report) => report.requeued)).toEqual([0, 0, 4, 2, 0, 0]);
    expect(await inRedis(ids)).toEqual(ids);
    const swept = (await fx.core.metrics?.relayEnqueued.get())?.values.find((value) => value.labels.path === 'sweep');
    expect(swept?.value).toBe(6);

    // The second sweep looked at rows 5-6 only; row 1, noted missing by the first, is still the oldest one missing.
    expect(reports[1]?.lagSeconds).toBeGreaterThanOrEqual(599);
    expect(reports[3]?.lagSeconds).toBeGreaterThanOrEqual(590);
    expect(reports[5]?.lagSeconds).toBe(0);
  });

  it('takes back a running row whose worker and entry are gone from behind more stale running rows than a page, whose entries Redis holds', async () => {
    // Older running rows that Redis still holds entries of (a recovery lane's waiters, say), more than a page of them.
    const held = await staleRunningJobs(3, { held: true, minutesAgo: 10 });
    const [lost] = await staleRunningJobs(1, { held: false, minutesAgo: 5 });
    let retried = 0;
    for (let sweep = 1; sweep <= 3; sweep += 1) retried += (await fx.core.relay.sweep()).retried;

    expect(retried).toBe(1);
    // Deferred: queued again, its attempt given back.
    expect(await fx.one('SELECT status, attempts, deferrals FROM jobs WHERE id = $1', [lost])).toEqual({ status: 'queued', attempts: 0, deferrals: 1 });
    expect(await inRedis([lost as string])).toEqual([lost]);
    const untouched = await fx.query<{ status: string }>('SELECT status FROM jobs WHERE id = ANY($1::uuid[])', [held]);
    expect(untouched.map((row) => row.status)).toEqual(['running', 'running', 'running']);
  });

  it('hands over neither a noted row that left the queue nor one that reached Redis before the next look', async () => {
    const ids = await lostJobs(6);
    await fx.core.relay.sweep();
    // Rows 1-4 were noted as missing. Row 1 is cancelled, row 2 reaches Redis on its own.
    await fx.query("UPDATE jobs SET status = 'cancelled', finished_at = now() WHERE id = $1", [ids[0]]);
    await fx.core.relay.enqueue([{ id: ids[1] as string, type: 'echo', priority: 0 }]);

    const second = await fx.core.relay.sweep();
    const third = await fx.core.relay.sweep();
    const fourth = await fx.core.relay.sweep();

    expect(second).toMatchObject({ checked: 2, pending: 2, requeued: 0 });
    // The next pass starts at row 2 now: held; rows 3-5 lost (5 was noted by the second sweep); then row 6.
    expect(third).toMatchObject({ checked: 4, pending: 0, requeued: 3 });
    expect(fourth).toMatchObject({ checked: 1, pending: 0, requeued: 1 });
    expect(await inRedis(ids)).toEqual(ids.slice(1));
  });

  it('notes at most twice sweepMaxRows rows at a time; the rest are handed over on a later pass', async () => {
    const ids = await lostJobs(7);
    const reports = [];
    for (let sweep = 1; sweep <= 6; sweep += 1) reports.push(await fx.core.relay.sweep());

    // Six rows noted in pass 1, row 7 only once rows 1-6 are handed over (pass 2), and handed over in pass 3.
    expect(reports.map((report) => report.checked)).toEqual([4, 3, 4, 3, 4, 3]);
    expect(reports.map((report) => report.pending)).toEqual([4, 3, 0, 1, 0, 0]);
    expect(reports.map((report) => report.requeued)).toEqual([0, 0, 4, 2, 0, 1]);
    expect(await inRedis(ids)).toEqual(ids);
  });

  it('platform reconcile walks the whole backlog twice, however many sweeps that takes', async () => {
    const ids = await lostJobs(6);
    // First look: 4 rows, then 2 (two sweeps); second look the same, handing all six over.
    expect(await fx.core.admin.reconcile()).toEqual({
      checked: { firstLook: 6, secondLook: 6 },
      reenqueued: 6,
      refused: 0,
      retried: 0,
      failed: 0,
      abandoned: 0,
      pending: 0,
      sweptElsewhere: false,
    });
    expect(await inRedis(ids)).toEqual(ids);
  });

  it('platform reconcile says so when another process holds the sweep lock, instead of reporting nothing to repair', async () => {
    await lostJobs(2);
    const otherSweeper = await fx.core.generalPool.connect();
    try {
      await otherSweeper.query('SELECT pg_advisory_lock($1)', [SWEEP_LOCK_KEY]);
      expect(await fx.core.admin.reconcile()).toMatchObject({ checked: { firstLook: 0, secondLook: 0 }, reenqueued: 0, sweptElsewhere: true });
    } finally {
      await otherSweeper.query('SELECT pg_advisory_unlock($1)', [SWEEP_LOCK_KEY]);
      otherSweeper.release();
    }
  });

  it('says a run of failed sweeps twice, when the first fails and when one succeeds again, however many ticks come while Redis hangs', async () => {
    await lostJobs(1);
    const redis = await startRedis();
    const connection = createRedisConnection(redis.url, 'producer');
    const relay = new Relay({ connection, generalPool: fx.core.generalPool, log: fx.log }, { prefix: `${fx.env.QUEUE_PREFIX}-hung-${randomUUID()}`, sweepGraceMs: 300 });
    const { warned, counted, recovered, restore } = sweepLog();
    try {
      await relay.queue.waitUntilReady();
      redis.pause();
      // Ticks far shorter than a command's timeout: many come while one sweep waits for Redis.
      relay.startSweeper(100);
      for (const deadline = Date.now() + 30_000; counted().length < 2 && Date.now() < deadline; ) await delay(100);
      expect(warned()).toHaveLength(1);
      expect(counted().length).toBeGreaterThanOrEqual(2);
      redis.resume();
      for (const deadline = Date.now() + 20_000; recovered().length === 0 && Date.now() < deadline; ) await delay(100);
      expect(recovered()).toEqual([{ failedSweeps: expect.any(Number) }]);
      expect(recovered()[0]?.failedSweeps).toBeGreaterThanOrEqual(3);
      expect(warned()).toHaveLength(1);
    } finally {
      restore();
      redis.resume();
      await relay.close();
      connection.disconnect();
      await redis.destroy();
    }
  }, 90_000);

  it('says nothing of success while Redis hangs because another process held the sweep lock (its sweep did not run)', async () => {
    await lostJobs(1);
    const redis = await startRedis();
    const connection = createRedisConnection(redis.url, 'producer');
    const relay = new Relay({ connection, generalPool: fx.core.generalPool, log: fx.log }, { prefix: `${fx.env.QUEUE_PREFIX}-hung-held-${randomUUID()}`, sweepGraceMs: 300 });
    const otherSweeper = await fx.core.generalPool.connect();
    const { warned, counted, recovered, restore } = sweepLog();
    try {
      await relay.queue.waitUntilReady();
      redis.pause();
      relay.startSweeper(100);
      for (const deadline = Date.now() + 45_000; warned().length < 1 && Date.now() < deadline; ) await delay(100);
      expect(warned()).toHaveLength(1);
      // Another process (an api's or a worker's relay, waiting on the same hung Redis) takes the
      // lock between two of this relay's sweeps: this relay's ticks then meet it held, and sweep nothing.
      for (const deadline = Date.now() + 45_000; Date.now() < deadline; await delay(10)) {
        const { rows } = await otherSweeper.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [SWEEP_LOCK_KEY]);
        if (rows[0]?.locked) break;
      }
      // The sweep that last held the lock let it go before its failure reached the log (the
      // unlock is in its finally): let that line come in before counting from here.
      await delay(100);
      const countedBefore = counted().length;
      await delay(1_500);
      expect(recovered()).toEqual([]);
      expect(counted()).toHaveLength(countedBefore);
      // The lock released while Redis still hangs: the next sweep runs, and fails again.
      await otherSweeper.query('SELECT pg_advisory_unlock($1)', [SWEEP_LOCK_KEY]);
      for (const deadline = Date.now() + 45_000; counted().length <= countedBefore && Date.now() < deadline; ) await delay(100);
      expect(counted().length).toBeGreaterThan(countedBefore);
      expect(recovered()).toEqual([]);
      redis.resume();
      for (const deadline = Date.now() + 20_000; recovered().length === 0 && Date.now() < deadline; ) await delay(100);
      expect(recovered()).toEqual([{ failedSweeps: expect.any(Number) }]);
      expect(warned()).toHaveLength(1);
    } finally {
      restore();
      redis.resume();
      await otherSweeper.query('SELECT pg_advisory_unlock_all()');
      otherSweeper.release();
      await relay.close();
      connection.disconnect();
      await redis.destroy();
    }
  }, 120_000);
});
