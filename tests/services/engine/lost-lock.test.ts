/**
 * A worker's lock on a running queue entry lapses when Redis is away longer than the lock
 * lasts (paused, partitioned): on its return BullMQ cannot renew the lock, and its stalled
 * check hands the entry out again. The first run used to go on beside the new one (found by
 * an outside walk: a 100 s sleep across a 45 s Redis pause ran twice at once, the worker
 * logging "could not renew lock" every 7.5 s). The run that lost its lock stops instead.
 *
 * BullMQ counts such a run as one that ended with its worker, as it counts a crash: a long
 * job that lived through three such outages was dead-lettered as a crash loop (found by a
 * probe: a 240 s sleep across Redis pauses of 40 s). A worker whose loop kept running
 * records the lapse as Redis's doing, and only the other runs count towards a crash loop;
 * a job that blocks its worker's loop past the lock is still one.
 * On a Redis of its own: the test pauses it.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { echo } from '../../../services/contract';
import { findProcessor } from '../../../services/worker/jobs';
import { defineProcessor, type Processor } from '../../../services/worker/processor';
import { startRedis, type RedisServer } from '../../harness/redis';
import { useSharedServices } from '../../harness/shared';
import { countedSleep, expectSleepLivesThroughLapses } from './counted-sleep';
import { createEngineFixture, statusOf, submission, waitFor, type EngineFixture } from './fixture';
import { FAST_STALL } from './stall';

describe('job engine: a run whose queue lock lapsed while Redis was away', () => {
  let redis: RedisServer;
  let fx: EngineFixture;
  const { processor: countsRuns, sleeps, reset: resetSleeps } = countedSleep();
  let blockingRuns = 0;

  /** Holds its worker's event loop past the lock's duration, then waits to be stopped: a job at fault for its lapses. */
  const blocksItsWorker = defineProcessor(echo, async ({ signal }) => {
    blockingRuns += 1;
    const until = Date.now() + FAST_STALL.lockDurationMs + 1_000;
    while (Date.now() < until) {
      // Spins: nothing else in this process runs meanwhile, the lock renewals included.
    }
    await delay(60_000, undefined, { signal });
    return { result: {} };
  }) as unknown as Processor;

  beforeAll(async () => {
    redis = await startRedis();
    const { databaseUrl } = await useSharedServices();
    fx = await createEngineFixture({ servers: { databaseUrl, redisUrl: redis.url, redisPrefix: '{lost-lock}' } });
    const processors = (type: string) => (type === 'sleep' ? countsRuns : type === 'echo' ? blocksItsWorker : findProcessor(type));
    await fx.startRunner({}, { processors });
  });
  afterAll(async () => {
    await fx?.close();
    await redis?.destroy();
  });
  beforeEach(resetSleeps);

  /** Pauses Redis past the lock's duration, so the lock lapses while Redis is away. */
  async function pauseRedisPastTheLock(): Promise<void> {
    redis.pause();
    try {
      await delay(FAST_STALL.lockDurationMs + 1_500);
    } finally {
      redis.resume();
    }
  }

  it('stops, so the redelivered entry runs the job alone, and the job succeeds without a charged attempt', async () => {
    // Long enough that the first run, left alone, would still be going when the entry is delivered again.
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 8_000 }, maxAttempts: 1 }));
    await waitFor('the run to be written', async () => (await statusOf(fx, job.id)) === 'running');

    await pauseRedisPastTheLock();

    await waitFor('the job to succeed', async () => (await statusOf(fx, job.id)) === 'succeeded', 30_000);
    expect(sleeps.runs).toBeGreaterThanOrEqual(2);
    expect(sleeps.mostAtOnce).toBe(1);
    const { attempts } = await fx.one<{ attempts: number }>('SELECT attempts FROM jobs WHERE id = $1', [job.id]);
    expect(attempts).toBe(1);
  });

  it('lives through more such outages than a crash loop is allowed runs: they were Redis\'s doing, so the job succeeds', async () => {
    await expectSleepLivesThroughLapses(fx, sleeps, pauseRedisPastTheLock);
  });

  it("still dead-letters a job that blocks its worker's loop past the lock each time it runs: those lapses are the job's", async () => {
    blockingRuns = 0;
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: 'spins' }, maxAttempts: 1 }));
    await waitFor('the job to be dead-lettered', async () => (await statusOf(fx, job.id)) === 'failed', 60_000);
    const row = await fx.one<{ error: string; lock_lapses: number }>('SELECT error, lock_lapses FROM jobs WHERE id = $1', [job.id]);
    expect(row.error).toMatch(/ended with its worker/);
    expect(row.lock_lapses).toBe(0);
    expect(blockingRuns).toBe(FAST_STALL.maxStalledCount + 1);
  });
});
