/**
 * A cancel is a message on a Redis channel, and a message that never reaches the worker's
 * subscription reaches no one:
 * - published while the subscription is down (Redis restarting, a reconnect not yet
 *   resubscribed): once subscribed again the worker asks PostgreSQL which of its running
 *   jobs were cancelled meanwhile, and stops them (found by an outside walk: a cancel 0.7 s
 *   after a dropped connection never stopped a 30 s sleep);
 * - while Redis answers no one (paused, partitioned) the subscription stays open, so nothing
 *   resubscribes: the worker also asks PostgreSQL every few seconds (found by an outside
 *   walk: `platform jobs cancel` during a Redis pause said "cancelled", and the 10-minute
 *   sleep ran on for its whole 10 minutes, holding its slot).
 * On a Redis of its own: the tests kill its subscriber connections and pause it.
 */
import { sleep } from '../../../services/contract';
import { cancelJob } from '../../../services/core/db/jobs';
import { cancelChannel } from '../../../services/core/queue/keys';
import { findProcessor } from '../../../services/worker/jobs';
import { defineProcessor, type Processor } from '../../../services/worker/processor';
import type { RunnerOptions } from '../../../services/worker/runner';
import { startRedis, type RedisServer } from '../../harness/redis';
import { useSharedServices } from '../../harness/shared';
import { createEngineFixture, statusOf, submission, untilAborted, waitFor, type EngineFixture } from './fixture';

describe('job engine: a cancel the worker\'s subscription missed', () => {
  let redis: RedisServer;
  let fx: EngineFixture;

  beforeAll(async () => {
    redis = await startRedis();
    const { databaseUrl } = await useSharedServices();
    fx = await createEngineFixture({ servers: { databaseUrl, redisUrl: redis.url, redisPrefix: '{cancel-missed}' } });
  });
  afterAll(async () => {
    redis?.resume();
    await fx?.close();
    await redis?.destroy();
  });

  /** A runner whose sleep jobs run until stopped, and one such job, running. */
  async function heldSleep(options: Partial<RunnerOptions> = {}) {
    let entered!: () => void;
    const running = new Promise<void>((resolve) => (entered = resolve));
    let aborted = false;
    const waitsToBeStopped = defineProcessor(sleep, async ({ signal }) => {
      entered();
      return untilAborted(signal, () => (aborted = true));
    }) as unknown as Processor;
    const runner = await fx.startRunner(options, { processors: (type) => (type === 'sleep' ? waitsToBeStopped : findProcessor(type)) });
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 60_000 }, maxAttempts: 1 }));
    await running;
    await waitFor('the run to be written', async () => (await statusOf(fx, job.id)) === 'running');
    return { runner, jobId: job.id, aborted: () => aborted };
  }

  it('stops the job once the worker is subscribed again', async () => {
    const { runner, jobId, aborted } = await heldSleep();
    // The worker's subscriber connection drops (it reconnects 200 ms later); the cancel commits and is announced meanwhile.
    await fx.core.redis.client.client('KILL', 'TYPE', 'pubsub');
    expect(await cancelJob(fx.core.generalPool, jobId, fx.ownerId)).toMatchObject({ previous: 'running' });
    expect(await fx.core.redis.client.publish(cancelChannel(fx.env.QUEUE_PREFIX), jobId)).toBe(0);

    await waitFor('the worker to stop the cancelled job', async () => aborted() && runner.inFlight === 0, 10_000);
    expect(await statusOf(fx, jobId)).toBe('cancelled');
    await runner.stop(1_000);
  });

  it('stops the running job while Redis is still away', async () => {
    const { runner, jobId, aborted } = await heldSleep({ cancelCheckMs: 500 });
    redis.pause();
    try {
      // The cancel commits in PostgreSQL; its announcement cannot go out while Redis is paused.
      expect(await cancelJob(fx.core.generalPool, jobId, fx.ownerId)).toMatchObject({ previous: 'running' });
      await waitFor('the worker to stop the cancelled job', async () => aborted(), 10_000);
    } finally {
      redis.resume();
    }
    await waitFor('the delivery to end', async () => runner.inFlight === 0, 20_000);
    expect(await statusOf(fx, jobId)).toBe('cancelled');
  });
});
