/**
 * A cancel is a message on a Redis channel. While Redis answers no one (paused, partitioned)
 * the worker's subscription stays open, so nothing resubscribes and asks PostgreSQL what was
 * missed: the cancel reached no worker, and the job ran to its end holding its slot (found by
 * an outside walk: `platform jobs cancel` during a Redis pause said "cancelled", and the
 * 10-minute sleep ran on for its whole 10 minutes). The worker now also asks PostgreSQL
 * every few seconds which of its running jobs were cancelled.
 * On a Redis of its own: the test pauses it.
 */
import { sleep } from '../../../services/contract';
import { cancelJob } from '../../../services/core/db/jobs';
import { findProcessor } from '../../../services/worker/jobs';
import { defineProcessor, type Processor } from '../../../services/worker/processor';
import { startRedis, type RedisServer } from '../../harness/redis';
import { useSharedServices } from '../../harness/shared';
import { createEngineFixture, statusOf, submission, untilAborted, waitFor, type EngineFixture } from './fixture';

describe('job engine: a cancel while Redis answers no one', () => {
  let redis: RedisServer;
  let fx: EngineFixture;

  beforeAll(async () => {
    redis = await startRedis();
    const { databaseUrl } = await useSharedServices();
    fx = await createEngineFixture({ servers: { databaseUrl, redisUrl: redis.url, redisPrefix: '{cancel-paused}' } });
  });
  afterAll(async () => {
    await fx?.close();
    await redis?.destroy();
  });

  it('stops the running job while Redis is still away', async () => {
    let entered!: () => void;
    const running = new Promise<void>((resolve) => (entered = resolve));
    let aborted = false;
    const waitsToBeStopped = defineProcessor(sleep, async ({ signal }) => {
      entered();
      return untilAborted(signal, () => (aborted = true));
    }) as unknown as Processor;
    const runner = await fx.startRunner({ cancelCheckMs: 500 }, { processors: (type) => (type === 'sleep' ? waitsToBeStopped : findProcessor(type)) });
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 60_000 }, maxAttempts: 1 }));
    await running;
    await waitFor('the run to be written', async () => (await statusOf(fx, job.id)) === 'running');

    redis.pause();
    try {
      // The cancel commits in PostgreSQL; its announcement cannot go out while Redis is paused.
      expect(await cancelJob(fx.core.generalPool, job.id, fx.ownerId)).toMatchObject({ previous: 'running' });
      await waitFor('the worker to stop the cancelled job', async () => aborted, 10_000);
    } finally {
      redis.resume();
    }
    await waitFor('the delivery to end', async () => runner.inFlight === 0, 20_000);
    expect(await statusOf(fx, job.id)).toBe('cancelled');
  });
});
