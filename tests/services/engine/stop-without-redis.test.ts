import { startRedis, type RedisServer } from '../../harness/redis';
import { useSharedServices } from '../../harness/shared';
import { createEngineFixture, statusOf, submission, waitFor, type EngineFixture } from './fixture';

/**
 * With Redis gone (SIGKILL, a failover), BullMQ's close() never returns: the runner must not
 * hold a shutdown for the whole grace period (and into the orchestrator's SIGKILL) when it
 * has nothing left to finish, and must still let a running job finish when it has.
 */
describe('worker: stopping while Redis is gone', () => {
  let redis: RedisServer;
  let fx: EngineFixture | undefined;

  beforeEach(async () => {
    redis = await startRedis();
    const shared = await useSharedServices();
    fx = await createEngineFixture({ servers: { databaseUrl: shared.databaseUrl, redisUrl: redis.url, redisPrefix: `{stop-no-redis-${Date.now()}}` } });
  });
  afterEach(async () => {
    await fx?.close();
    fx = undefined;
    await redis.destroy();
  });

  it('an idle worker stops well within its grace period', async () => {
    const runner = await fx!.startRunner();
    await redis.kill();
    const graceMs = 4_000;
    const started = Date.now();
    await runner.stop(graceMs);
    expect(Date.now() - started).toBeLessThan(graceMs);
  }, 30_000);

  it('a job running when Redis died still finishes, and is written to PostgreSQL, before the worker stops', async () => {
    const engine = fx!;
    const runner = await engine.startRunner();
    const { job } = await engine.core.jobs.submit(submission({ ownerId: engine.ownerId, type: 'sleep', input: { ms: 1_500 } }));
    await waitFor('the job to run', async () => (await statusOf(engine, job.id)) === 'running');
    await redis.kill();
    await runner.stop(10_000);
    expect(await statusOf(engine, job.id)).toBe('succeeded');
  }, 30_000);
});
