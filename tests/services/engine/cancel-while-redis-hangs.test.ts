/**
 * A cancel commits in PostgreSQL and then asks Redis to stop the job's delivery: take its
 * queue entry out, or tell the worker running it. While Redis hangs (paused, partitioned),
 * each of those calls waits out its command timeout, and the cancel answered only after
 * them, about 6 s later (found by an outside walk). The answer no longer waits for them:
 * nothing of a cancelled job runs whether they finish or not, and they finish once Redis
 * answers again. On a Redis of its own, which the test pauses.
 */
import { startRedis, type RedisServer } from '../../harness/redis';
import { useSharedServices } from '../../harness/shared';
import { createEngineFixture, statusOf, submission, waitFor, type EngineFixture } from './fixture';

/** The relay's bound on a Redis call of its, which taking an entry out waits out while Redis hangs. */
const ENQUEUE_TIMEOUT_MS = 5_000;

describe('job engine: a cancel while Redis hangs', () => {
  let redis: RedisServer;
  let fx: EngineFixture;

  beforeAll(async () => {
    redis = await startRedis();
    const { databaseUrl } = await useSharedServices();
    fx = await createEngineFixture({
      servers: { databaseUrl, redisUrl: redis.url, redisPrefix: '{cancel-hung}' },
      core: { relay: { sweepGraceMs: 300, lostRunningAfterMs: 3_000, enqueueTimeoutMs: ENQUEUE_TIMEOUT_MS } },
    });
  });
  afterAll(async () => {
    redis?.resume();
    await fx?.close();
    await redis?.destroy();
  });

  it('answers without waiting for Redis, and the queue entry is taken out once Redis answers again', async () => {
    // No worker runs here: the job stays queued, its entry in Redis.
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 1 } }));
    await waitFor('the job to reach Redis', async () => (await fx.core.relay.queue.getJob(job.id)) !== undefined);

    redis.pause();
    let answeredInMs: number;
    try {
      const started = Date.now();
      const cancelled = await fx.core.jobs.cancel(fx.ownerId, job.id);
      answeredInMs = Date.now() - started;
      expect(cancelled.status).toBe('cancelled');
    } finally {
      redis.resume();
    }
    // Taking the entry out alone would have held the answer for the whole bound.
    expect(answeredInMs).toBeLessThan(ENQUEUE_TIMEOUT_MS / 2);
    await waitFor('the entry to be taken out', async () => (await fx.core.relay.queue.getJob(job.id)) === undefined);
    expect(await statusOf(fx, job.id)).toBe('cancelled');
  });
});
