/**
 * A cancel is a message on a Redis channel, and a message published while the worker's
 * subscription is down (Redis restarting, a reconnect not yet resubscribed) reaches no one.
 * The worker ran such a job to its end and threw the result away; once subscribed again it
 * now asks PostgreSQL which of its running jobs were cancelled meanwhile, and stops them.
 * (Found by an outside walk: a cancel 0.7 s after a dropped connection never stopped a 30 s sleep.)
 * On a Redis of its own: the test kills every subscriber connection on it.
 */
import { sleep } from '../../../services/contract';
import { cancelJob } from '../../../services/core/db/jobs';
import { cancelChannel } from '../../../services/core/queue/keys';
import { findProcessor } from '../../../services/worker/jobs';
import { defineProcessor, type Processor } from '../../../services/worker/processor';
import { startRedis, type RedisServer } from '../../harness/redis';
import { useSharedServices } from '../../harness/shared';
import { createEngineFixture, statusOf, submission, untilAborted, waitFor, type EngineFixture } from './fixture';

describe('job engine: a cancel published while the worker was not subscribed', () => {
  let redis: RedisServer;
  let fx: EngineFixture;

  beforeAll(async () => {
    redis = await startRedis();
    const { databaseUrl } = await useSharedServices();
    fx = await createEngineFixture({ servers: { databaseUrl, redisUrl: redis.url, redisPrefix: '{cancel-unsubscribed}' } });
  });
  afterAll(async () => {
    await fx?.close();
    await redis?.destroy();
  });

  it('stops the job once the worker is subscribed again', async () => {
    let entered!: () => void;
    const running = new Promise<void>((resolve) => (entered = resolve));
    let aborted = false;
    const waitsToBeStopped = defineProcessor(sleep, async ({ signal }) => {
      entered();
      return untilAborted(signal, () => (aborted = true));
    }) as unknown as Processor;
    const runner = await fx.startRunner({}, { processors: (type) => (type === 'sleep' ? waitsToBeStopped : findProcessor(type)) });
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 60_000 }, maxAttempts: 1 }));
    await running;
    await waitFor('the run to be written', async () => (await statusOf(fx, job.id)) === 'running');

    // The worker's subscriber connection drops (it reconnects 200 ms later); the cancel commits and is announced meanwhile.
    await fx.core.redis.client.client('KILL', 'TYPE', 'pubsub');
    expect(await cancelJob(fx.core.generalPool, job.id, fx.ownerId)).toMatchObject({ previous: 'running' });
    expect(await fx.core.redis.client.publish(cancelChannel(fx.env.QUEUE_PREFIX), job.id)).toBe(0);

    await waitFor('the worker to stop the cancelled job', async () => aborted && runner.inFlight === 0, 10_000);
    expect(await statusOf(fx, job.id)).toBe('cancelled');
  });
});
