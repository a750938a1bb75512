/**
 * A queued row whose own BullMQ entry crash-looped is dead-lettered by the sweep, unless
 * that entry belongs to an earlier run: a replay made while Redis was away queues the row
 * in PostgreSQL and cannot replace the entry its crash loop left (kept a day with the
 * failed entries). The sweep must hand such a row over, not dead-letter it again without
 * it ever running.
 *
 * A running row whose entry BullMQ gave up on, and which no worker settled, is the sweep's
 * too: dead-lettered, unless the runs BullMQ counted were mostly stopped for locks Redis let
 * lapse (jobs.lock_lapses), which are not the job's doing: then it is queued again.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { STALL_SETTINGS } from '../../../services/contract';
import { readLockLapses, recordLockLapses } from '../../../services/core/db/jobs';
import { crashLoopReason } from '../../../services/core/jobs/lifecycle';
import { bullJobKey } from '../../../services/core/queue/keys';
import { createEngineFixture, statusOf, waitFor, type EngineFixture } from './fixture';

describe('relay sweep and crash-looped entries', () => {
  let fx: EngineFixture;

  beforeEach(async () => {
    fx = await createEngineFixture();
  });
  afterEach(async () => {
    await fx?.close();
  });

  /** A queued echo job last queued `queuedSecondsAgo` ago, with an entry of its own that BullMQ gave up on as a crash loop, added `addedSecondsAgo` ago. */
  async function queuedWithCrashLoopedEntry(queuedSecondsAgo: number, addedSecondsAgo: number): Promise<string> {
    const id = randomUUID();
    await fx.query(
      "INSERT INTO jobs (id, owner_id, type, input, status, max_attempts, updated_at) VALUES ($1, $2, 'echo', '{\"payload\":\"again\"}', 'queued', 3, now() - $3::int * interval '1 second')",
      [id, fx.ownerId, queuedSecondsAgo],
    );
    await giveUpOnEntry(id, { timestamp: String(Date.now() - addedSecondsAgo * 1_000) });
    return id;
  }

  /** Gives job `id` an entry of its own that BullMQ gave up on as a crash loop, with these fields of BullMQ's set on it. */
  async function giveUpOnEntry(id: string, fields: Record<string, string>): Promise<void> {
    await fx.core.relay.queue.add('echo', { jobId: id }, { jobId: id });
    const redis = new Redis(fx.env.REDIS_URL, { lazyConnect: true });
    try {
      // What BullMQ leaves on an entry that stalled more than maxStalledCount times.
      await redis.hset(bullJobKey(fx.env.QUEUE_PREFIX, id), { defa: 'job stalled more than allowable limit', ...fields });
    } finally {
      redis.disconnect();
    }
  }

  it('hands over a row queued again after its entry crash-looped, and the job runs', async () => {
    const id = await queuedWithCrashLoopedEntry(60, 600);

    const first = await fx.core.relay.sweep();
    const second = await fx.core.relay.sweep();

    expect(first).toMatchObject({ pending: 1, requeued: 0, abandoned: 0 });
    expect(second).toMatchObject({ pending: 0, requeued: 1, abandoned: 0 });
    await fx.startRunner();
    await waitFor('the job to succeed', async () => (await statusOf(fx, id)) === 'succeeded');
    const { attempts } = await fx.one<{ attempts: number }>('SELECT attempts FROM jobs WHERE id = $1', [id]);
    expect(attempts).toBe(1);
  });

  it('still dead-letters a row whose entry crash-looped in the run it is queued for', async () => {
    const id = await queuedWithCrashLoopedEntry(60, 30);

    const report = await fx.core.relay.sweep();

    expect(report).toMatchObject({ abandoned: 1, requeued: 0 });
    const row = await fx.one<{ status: string; error: string }>('SELECT status, error FROM jobs WHERE id = $1', [id]);
    expect(row).toEqual({ status: 'failed', error: crashLoopReason(STALL_SETTINGS.maxStalledCount + 1) });
  });

  it('counts an entry added within the clock margin before the row was queued as the current run', async () => {
    const id = await queuedWithCrashLoopedEntry(60, 60);

    expect(await fx.core.relay.sweep()).toMatchObject({ abandoned: 1 });
    expect(await statusOf(fx, id)).toBe('failed');
  });

  /**
   * A running echo job untouched for two minutes, whose own entry BullMQ gave up on after
   * `stalls` runs that ended with their worker, `lockLapses` of them Redis's: recorded for
   * that entry, or for one before it (`ofEarlierEntry`).
   */
  async function runningWithGivenUpEntry(stalls: number, lockLapses: number, { ofEarlierEntry = false } = {}): Promise<string> {
    const id = randomUUID();
    await fx.query(
      "INSERT INTO jobs (id, owner_id, type, input, status, attempts, max_attempts, updated_at) VALUES ($1, $2, 'echo', '{\"payload\":\"lapsed\"}', 'running', 1, 3, now() - interval '2 minutes')",
      [id, fx.ownerId],
    );
    await giveUpOnEntry(id, { stc: String(stalls) });
    const entry = await fx.core.relay.queue.getJob(id);
    const entryAddedAt = (entry?.timestamp ?? 0) - (ofEarlierEntry ? 60_000 : 0);
    await fx.query('UPDATE jobs SET lock_lapses = $2, lock_lapses_entry = $3 WHERE id = $1', [id, lockLapses, entryAddedAt]);
    return id;
  }

  it('queues a running job again when the runs BullMQ gave up on were stopped for locks Redis let lapse, and it runs to success at its attempt', async () => {
    const id = await runningWithGivenUpEntry(STALL_SETTINGS.maxStalledCount + 1, STALL_SETTINGS.maxStalledCount + 1);

    expect(await fx.core.relay.sweep()).toMatchObject({ abandoned: 0 });
    await fx.startRunner();
    await waitFor('the job to succeed', async () => (await statusOf(fx, id)) === 'succeeded');
    const { attempts } = await fx.one<{ attempts: number }>('SELECT attempts FROM jobs WHERE id = $1', [id]);
    expect(attempts).toBe(1);
  });

  // Found by the upgrade walk: the lapses stayed on the row through retries and replays, whose new entries BullMQ counts from 0.
  it('does not take the lapses of an earlier entry of the job off the runs BullMQ counted for this one', async () => {
    const id = await runningWithGivenUpEntry(STALL_SETTINGS.maxStalledCount + 1, STALL_SETTINGS.maxStalledCount + 1, { ofEarlierEntry: true });

    expect(await fx.core.relay.sweep()).toMatchObject({ abandoned: 1 });
    expect(await statusOf(fx, id)).toBe('failed');
  });

  it('counts the lapses a worker records per entry: one of another entry starts the count again', async () => {
    const id = await runningWithGivenUpEntry(0, 0);
    const lapsesOf = (entryAddedAt: number) => readLockLapses(fx.core.generalPool, id, entryAddedAt);

    await recordLockLapses(fx.core.generalPool, [{ jobId: id, entryAddedAt: 1_000 }]);
    await recordLockLapses(fx.core.generalPool, [{ jobId: id, entryAddedAt: 1_000 }]);
    expect([await lapsesOf(1_000), await lapsesOf(2_000)]).toEqual([2, 0]);
    await recordLockLapses(fx.core.generalPool, [{ jobId: id, entryAddedAt: 2_000 }]);
    expect([await lapsesOf(1_000), await lapsesOf(2_000)]).toEqual([0, 1]);
  });

  it('dead-letters a running job whose given-up runs are more crashes than allowed once its lapses are taken off', async () => {
    const id = await runningWithGivenUpEntry(STALL_SETTINGS.maxStalledCount + 2, 1);

    expect(await fx.core.relay.sweep()).toMatchObject({ abandoned: 1 });
    expect(await statusOf(fx, id)).toBe('failed');
  });
});
