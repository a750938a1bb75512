/**
 * What KEDA scales the workers on (backlogQuery, run by its postgresql scaler) against what
 * the services hold: every job the platform accepted and has not finished, however BullMQ
 * files it (wait list, prioritized set, delayed set, active list), and equal to what the
 * worker reports as queue depth where each job has an entry of its own (that depth counts
 * entries, and jobs of a type that shares entries go up to ten to one). The length of
 * BullMQ's wait list, what a plain Redis list trigger would read, misses the prioritized
 * and delayed jobs.
 */
import { BACKLOG_STATUSES, backlogQuery, JOB_STATUSES, QUEUES, shareOfBacklogQuery } from '../../../services/contract';
import { queueDepth } from '../../../services/core/jobs/admin';
import { defineProcessor } from '../../../services/worker/processor';
import { findProcessor } from '../../../services/worker/jobs';
import { echo, sleep } from '../../../services/contract/jobs';
import { createEngineFixture, handedOver, submission, waitFor, type EngineFixture } from './fixture';

describe('the autoscaler\'s backlog', () => {
  let fx: EngineFixture;
  beforeAll(async () => {
    fx = await createEngineFixture();
  });
  afterAll(async () => {
    await fx?.close();
  });

  /** A share larger than any test's jobs, but for the test of the share itself. */
  const backlog = async (jobsRunningPerUser = 1_000) => Number((await fx.one<{ count: number }>(backlogQuery(jobsRunningPerUser))).count);
  const inBullmq = async () => {
    const depth = await queueDepth(fx.core.relay);
    return depth.waiting + depth.prioritized + depth.delayed + depth.active;
  };

  it('counts exactly the statuses of unfinished jobs', () => {
    expect([...BACKLOG_STATUSES].sort()).toEqual(JOB_STATUSES.filter((s) => s === 'queued' || s === 'running').sort());
    expect(backlogQuery(50)).toContain("WHERE status IN ('queued', 'running')");
  });

  it('tells the share a query was made for, and a query it did not make', () => {
    expect(shareOfBacklogQuery(backlogQuery(50))).toBe(50);
    expect(shareOfBacklogQuery(backlogQuery(7))).toBe(7);
    expect(shareOfBacklogQuery("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')")).toBeUndefined();
    expect(shareOfBacklogQuery(backlogQuery(50).replace('AS per_user', 'AS per_user WHERE false'))).toBeUndefined();
    expect(() => backlogQuery(0)).toThrow('jobsRunningPerUser must be a positive integer');
  });

  it('counts prioritized, plain and running jobs as the queue depth the worker emits does, where the wait list alone under-counts', async () => {
    // sleep jobs have an entry each, so BullMQ's depth counts jobs (see the shared entries below).
    const submit = (priority?: number) => fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 0 }, ...(priority !== undefined ? { priority } : {}) }));
    for (let i = 0; i < 4; i++) await submit();
    for (let i = 0; i < 6; i++) await submit(i + 1);
    await waitFor('the relay to hand every job to BullMQ', async () => (await inBullmq()) === 10);
    expect(await backlog()).toBe(10);
    // BullMQ's wait list, what a Redis list-length trigger reads: prioritized jobs are not in it.
    const waitList = await fx.core.redis.client.llen(`${fx.env.QUEUE_PREFIX}:${QUEUES.jobs}:wait`);
    expect(waitList).toBeLessThan(10);

    // Running jobs are backlog too: a worker holding them has no slot for more.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const holding = defineProcessor(sleep, async () => {
      await held;
      return { result: { sleptMs: 0 } };
    });
    const runner = await fx.startRunner({ concurrency: 3 }, { processors: (type) => (type === 'sleep' ? (holding as never) : findProcessor(type)) });
    await waitFor('three jobs to run', async () => Number((await fx.one<{ count: number }>("SELECT count(*) FROM jobs WHERE status = 'running'")).count) === 3);
    expect(await backlog()).toBe(10);
    expect(await inBullmq()).toBe(10);
    release();
    await waitFor('the backlog to drain', async () => (await backlog()) === 0, 30_000);
    await waitFor('BullMQ to agree', async () => (await inBullmq()) === 0);
    await runner.stop(1_000);
  });

  it('counts each job of an entry shared by jobs submitted together, where BullMQ\'s depth counts entries', async () => {
    const accepted = await Promise.all(Array.from({ length: 12 }, () => fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: {} }))));
    await handedOver(fx, accepted.map(({ job }) => job.id));
    expect(await backlog()).toBe(12);
    // At most 10 echo jobs to an entry (jobsPerQueueEntry).
    const entries = await inBullmq();
    expect(entries).toBeGreaterThanOrEqual(2);
    expect(entries).toBeLessThan(12);
    const runner = await fx.startRunner();
    await waitFor('the backlog to drain', async () => (await backlog()) === 0, 30_000);
    await waitFor('BullMQ to agree', async () => (await inBullmq()) === 0);
    await runner.stop(1_000);
  });

  it('counts a job waiting out its retry backoff, which BullMQ keeps in the delayed set', async () => {
    // A minute of backoff: the jobs stay delayed for the whole check.
    const failing = defineProcessor({ ...echo, retry: { attempts: 3, backoffMs: 60_000 } }, async () => {
      throw new Error('transient');
    });
    const runner = await fx.startRunner({}, { processors: (type) => (type === 'echo' ? (failing as never) : findProcessor(type)) });
    for (let i = 0; i < 2; i++) await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: {} }));
    await waitFor('both jobs to wait out their backoff', async () => (await queueDepth(fx.core.relay)).delayed === 2);
    expect(await backlog()).toBe(2);
    expect(await fx.core.redis.client.llen(`${fx.env.QUEUE_PREFIX}:${QUEUES.jobs}:wait`)).toBe(0);
    expect(await inBullmq()).toBe(2);
    await runner.stop(1_000);
  });

  it('counts a user\'s jobs in entries of their own up to their share, and jobs that share entries in full: the jobs workers could run now', async () => {
    const hog = await fx.createUser();
    const other = await fx.createUser();
    // No worker runs now; what earlier tests left waiting (their retries) stays as it is.
    const before = await backlog();
    const submit = async (ownerId: string, type: 'sleep' | 'echo', count: number) =>
      (await Promise.all(Array.from({ length: count }, () => fx.core.jobs.submit(submission({ ownerId, type, input: type === 'sleep' ? { ms: 0 } : {} }))))).map(({ job }) => ({ ownerId, id: job.id }));
    const jobs = [...(await submit(hog, 'sleep', 9)), ...(await submit(hog, 'echo', 4)), ...(await submit(other, 'sleep', 2))];
    // The hog's 9 sleeps count as the share of 3, its echo jobs in full; the other user's 2 sleeps are within the share.
    expect(await backlog(3)).toBe(before + 3 + 4 + 2);
    expect(await backlog()).toBe(before + 9 + 4 + 2);
    for (const job of jobs) await fx.core.jobs.cancel(job.ownerId, job.id);
    expect(await backlog(3)).toBe(before);
  });
});
