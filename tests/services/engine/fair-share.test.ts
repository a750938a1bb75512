/**
 * One user's long jobs cannot take every slot: across all workers a user runs at most
 * JOBS_RUNNING_PER_USER jobs, the rest of theirs wait (held, their attempts not charged),
 * and another user's jobs run in the slots left. A share that frees calls the user's
 * longest-held job back from its delay at once. Two runners over the harness's real
 * PostgreSQL and Redis stand for two worker processes.
 */
import type { Relay } from '../../../services/core/queue/relay';
import { bullJobKey } from '../../../services/core/queue/keys';
import { heldEntriesKey, runningSharesKey, UserShares } from '../../../services/core/queue/user-shares';
import { HELD_ENTRY_DELAY_MS, heldEntryDelayMs } from '../../../services/worker/fair-share';
import { createEngineFixture, submission, waitFor, type EngineFixture } from './fixture';

const PER_USER = 3;

describe('job engine: one user\'s share of the slots', () => {
  let fx: EngineFixture;
  const callBacks = { promoted: 0 };

  beforeAll(async () => {
    fx = await createEngineFixture();
    // The relay's call-back, counted: how a held job came back tells a call-back from its delay running out.
    const relay: Pick<Relay, 'requeue' | 'forgetSharedEntry' | 'promote'> = {
      requeue: (...args) => fx.core.relay.requeue(...args),
      forgetSharedEntry: (...args) => fx.core.relay.forgetSharedEntry(...args),
      promote: async (entryId) => {
        const promoted = await fx.core.relay.promote(entryId);
        if (promoted) callBacks.promoted += 1;
        return promoted;
      },
    };
    for (let worker = 0; worker < 2; worker += 1) await fx.startRunner({ concurrency: 4, jobsRunningPerUser: PER_USER }, { relay });
  });
  afterAll(async () => {
    await fx?.close();
  });

  const submitSleeps = (ownerId: string, ms: number, count: number) =>
    Promise.all(Array.from({ length: count }, async () => (await fx.core.jobs.submit(submission({ ownerId, type: 'sleep', input: { ms } }))).job.id));
  const runningOf = async (ownerId: string) => Number((await fx.one<{ n: string }>("SELECT count(*) AS n FROM jobs WHERE owner_id = $1 AND status = 'running'", [ownerId])).n);
  const cancelAll = (ownerId: string, ids: string[]) => Promise.all(ids.map((id) => fx.core.jobs.cancel(ownerId, id).catch(() => undefined)));

  it('a user with more long jobs than their share runs their share, and another user\'s jobs take the slots left', async () => {
    const hog = fx.ownerId;
    const other = await fx.createUser();
    const hogJobs = await submitSleeps(hog, 60_000, 12);
    await waitFor('the hog\'s share of jobs to run', async () => (await runningOf(hog)) === PER_USER);
    // Several deliveries of the held entries later, still only the share runs.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await runningOf(hog)).toBe(PER_USER);

    const otherJobs = await submitSleeps(other, 60_000, PER_USER);
    await waitFor('the other user\'s jobs to run beside the hog\'s', async () => (await runningOf(other)) === PER_USER);
    expect(await runningOf(hog)).toBe(PER_USER);

    // A held delivery is not an attempt: the waiting jobs are queued with none spent.
    const waiting = await fx.query<{ attempts: number }>("SELECT attempts FROM jobs WHERE owner_id = $1 AND status = 'queued'", [hog]);
    expect(waiting).toHaveLength(12 - PER_USER);
    expect(waiting.every((job) => job.attempts === 0)).toBe(true);
    // The count lives in Redis, shared by both workers.
    expect(await fx.core.redis.client.zcard(runningSharesKey(fx.env.QUEUE_PREFIX, hog))).toBe(PER_USER);
    expect(await fx.core.redis.client.zcard(heldEntriesKey(fx.env.QUEUE_PREFIX, hog))).toBeGreaterThan(0);

    await cancelAll(hog, hogJobs);
    await cancelAll(other, otherJobs);
    await waitFor('the cancelled jobs to stop', async () => (await runningOf(hog)) + (await runningOf(other)) === 0);
  }, 60_000);

  it('a job that ends calls its user\'s longest-held job back at once; held jobs run later with one attempt each', async () => {
    const user = await fx.createUser();
    const promotedBefore = callBacks.promoted;
    const all = await submitSleeps(user, 1_000, 2 * PER_USER);
    await waitFor('every job to succeed', async () => {
      const rows = await fx.query<{ status: string }>('SELECT status FROM jobs WHERE id = ANY($1::uuid[])', [all]);
      return rows.every((row) => row.status === 'succeeded');
    }, 40_000);
    // Six jobs on three shares: at least three waited, and each came back when a share freed.
    expect(callBacks.promoted - promotedBefore).toBeGreaterThanOrEqual(PER_USER);
    const events = await fx.query<{ job_id: string; to_status: string }>('SELECT job_id, to_status FROM job_events WHERE job_id = ANY($1::uuid[]) ORDER BY id', [all]);
    for (const id of all) {
      expect(events.filter((event) => event.job_id === id).map((event) => event.to_status)).toEqual(['queued', 'running', 'succeeded']);
    }
    const attempts = await fx.query<{ attempts: number }>('SELECT attempts FROM jobs WHERE id = ANY($1::uuid[])', [all]);
    expect(attempts.map((row) => row.attempts)).toEqual(all.map(() => 1));
    // Nothing stays counted once the user's jobs are done.
    await waitFor('the shares to be freed', async () => (await fx.core.redis.client.zcard(runningSharesKey(fx.env.QUEUE_PREFIX, user))) === 0);
  }, 60_000);

  it('lets a long line come back on its own less often, so a large backlog does not keep the workers busy redelivering it', async () => {
    const user = await fx.createUser();
    const jobs = await submitSleeps(user, 600_000, 150);
    const held = 150 - PER_USER;
    // An entry joins its user's line before its worker moves it to the delayed set, so the line
    // can be full while its last entry is still on the way: wait until every held entry sits in
    // the delayed set. BullMQ scores a delayed entry by when it is due (ms × 4096, plus a counter).
    const dueInMs = await waitFor('all but the share to be held and delayed', async () => {
      if ((await fx.core.redis.client.zcard(heldEntriesKey(fx.env.QUEUE_PREFIX, user))) !== held) return false;
      const scores = await fx.core.redis.client.zmscore(bullJobKey(fx.env.QUEUE_PREFIX, 'delayed'), ...jobs);
      const due = scores.filter((score): score is string => score !== null).map((score) => Math.floor(Number(score) / 4096) - Date.now());
      return due.length === held && due;
    }, 30_000);
    // The entry held last waits about as long as its place in the line says (14.7 s here), not the 10 s of a short line.
    expect(Math.max(...dueInMs)).toBeGreaterThan(HELD_ENTRY_DELAY_MS + 2_000);
    expect(Math.max(...dueInMs)).toBeLessThanOrEqual(heldEntryDelayMs(held));
    await cancelAll(user, jobs);
  }, 60_000);
});

describe('UserShares over Redis', () => {
  let fx: EngineFixture;
  let shares: UserShares;
  const lease = 30_000;
  beforeAll(async () => {
    fx = await createEngineFixture();
    shares = new UserShares(fx.core.redis.client, fx.env.QUEUE_PREFIX, { perUser: 2, leaseMs: lease, heldTtlMs: 60_000 });
  });
  afterAll(async () => {
    await fx?.close();
  });

  it('gives a user their shares, holds the rest in the order they waited, and hands the longest-held back when one frees', async () => {
    const now = Date.now();
    // 0: a share taken; else how many wait in the user's line.
    expect(await shares.take('u1', 'a', now)).toBe(0);
    expect(await shares.take('u1', 'b', now)).toBe(0);
    expect(await shares.take('u1', 'c', now + 1)).toBe(1);
    expect(await shares.take('u1', 'd', now + 2)).toBe(2);
    // Held again later, c keeps its place ahead of d.
    expect(await shares.take('u1', 'c', now + 3)).toBe(2);
    // Another user is not counted against u1.
    expect(await shares.take('u2', 'x', now)).toBe(0);
    // A job delivered again while it holds its share keeps it.
    expect(await shares.take('u1', 'a', now + 4)).toBe(0);

    expect(await shares.release('u1', 'a')).toBe('c');
    expect(await shares.take('u1', 'c', now + 5)).toBe(0);
    expect(await shares.nextHeld('u1')).toBe('d');
    expect(await shares.nextHeld('u1')).toBeUndefined();
    expect(await shares.release('u1', 'b')).toBeUndefined();
  });

  it('lets the shares of a worker that stopped renewing them lapse, and keeps those renewed', async () => {
    const now = Date.now();
    expect(await shares.take('u3', 'renewed', now)).toBe(0);
    expect(await shares.take('u3', 'abandoned', now)).toBe(0);
    expect(await shares.take('u3', 'waiting', now + 1)).toBe(1);
    await shares.renew([{ ownerId: 'u3', jobId: 'renewed' }], now + lease - 1);
    // Past the first lease: the abandoned share lapsed, the renewed one holds.
    expect(await shares.take('u3', 'waiting', now + lease + 1)).toBe(0);
    expect(await shares.take('u3', 'later', now + lease + 2)).toBe(1);
    // A renewal does not bring back a share already freed.
    await shares.release('u3', 'waiting');
    await shares.renew([{ ownerId: 'u3', jobId: 'waiting' }], now + lease + 3);
    expect(await fx.core.redis.client.zscore(runningSharesKey(fx.env.QUEUE_PREFIX, 'u3'), 'waiting')).toBeNull();
  });

  it('leaves no keys behind once a user\'s shares and holds run out', async () => {
    expect(await shares.take('u4', 'a')).toBe(0);
    expect(await shares.take('u4', 'b')).toBe(0);
    expect(await shares.take('u4', 'c')).toBe(1);
    const running = await fx.core.redis.client.pttl(runningSharesKey(fx.env.QUEUE_PREFIX, 'u4'));
    const held = await fx.core.redis.client.pttl(heldEntriesKey(fx.env.QUEUE_PREFIX, 'u4'));
    expect(running).toBeGreaterThan(0);
    expect(running).toBeLessThanOrEqual(lease);
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThanOrEqual(60_000);
  });
});
