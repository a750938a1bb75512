/**
 * A worker's lock on a running queue entry lapses when Redis is away longer than the lock
 * lasts (paused, partitioned): on its return BullMQ cannot renew the lock, and its stalled
 * check hands the entry out again. The first run used to go on beside the new one (found by
 * an outside walk: a 100 s sleep across a 45 s Redis pause ran twice at once, the worker
 * logging "could not renew lock" every 7.5 s). The run that lost its lock stops instead.
 * On a Redis of its own: the test pauses it.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { sleep } from '../../../services/contract';
import { findProcessor } from '../../../services/worker/jobs';
import { defineProcessor, type Processor } from '../../../services/worker/processor';
import { startRedis, type RedisServer } from '../../harness/redis';
import { useSharedServices } from '../../harness/shared';
import { createEngineFixture, statusOf, submission, waitFor, type EngineFixture } from './fixture';
import { FAST_STALL } from './stall';

describe('job engine: a run whose queue lock lapsed while Redis was away', () => {
  let redis: RedisServer;
  let fx: EngineFixture;

  beforeAll(async () => {
    redis = await startRedis();
    const { databaseUrl } = await useSharedServices();
    fx = await createEngineFixture({ servers: { databaseUrl, redisUrl: redis.url, redisPrefix: '{lost-lock}' } });
  });
  afterAll(async () => {
    await fx?.close();
    await redis?.destroy();
  });

  it('stops, so the redelivered entry runs the job alone, and the job succeeds without a charged attempt', async () => {
    let running = 0;
    let mostAtOnce = 0;
    let runs = 0;
    const countsRuns = defineProcessor(sleep, async ({ input, signal }) => {
      runs += 1;
      running += 1;
      mostAtOnce = Math.max(mostAtOnce, running);
      try {
        await delay(input.ms, undefined, { signal });
        return { result: { sleptMs: input.ms } };
      } finally {
        running -= 1;
      }
    }) as unknown as Processor;
    await fx.startRunner({}, { processors: (type) => (type === 'sleep' ? countsRuns : findProcessor(type)) });
    // Long enough that the first run, left alone, would still be going when the entry is delivered again.
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 8_000 }, maxAttempts: 1 }));
    await waitFor('the run to be written', async () => (await statusOf(fx, job.id)) === 'running');

    redis.pause();
    try {
      // Past the lock's duration, so the lock lapses while Redis is away.
      await delay(FAST_STALL.lockDurationMs + 1_500);
    } finally {
      redis.resume();
    }

    await waitFor('the job to succeed', async () => (await statusOf(fx, job.id)) === 'succeeded', 30_000);
    expect(runs).toBeGreaterThanOrEqual(2);
    expect(mostAtOnce).toBe(1);
    const { attempts } = await fx.one<{ attempts: number }>('SELECT attempts FROM jobs WHERE id = $1', [job.id]);
    expect(attempts).toBe(1);
  });
});
