/**
 * Redis letting a worker's locks lapse and PostgreSQL being away often go together (a
 * partitioned node, a host that stood still). The worker records each lapse that was
 * Redis's doing, so a long job is not dead-lettered as a crash loop for outages it lived
 * through (lost-lock.test.ts); when PostgreSQL cannot take that record at the moment of the
 * lapse, the worker keeps it and writes it once PostgreSQL is back.
 * On a PostgreSQL and a Redis of its own: the test stops the one and pauses the other.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { findProcessor } from '../../../services/worker/jobs';
import { startPostgres, type PostgresServer } from '../../harness/postgres';
import { startRedis, type RedisServer } from '../../harness/redis';
import { countedSleep, expectSleepLivesThroughLapses } from './counted-sleep';
import { createEngineFixture, type EngineFixture } from './fixture';
import { FAST_STALL } from './stall';

describe('job engine: a lock lapse while PostgreSQL is away too', () => {
  let postgres: PostgresServer;
  let redis: RedisServer;
  let fx: EngineFixture;
  const { processor: countsRuns, sleeps } = countedSleep();

  beforeAll(async () => {
    [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
    fx = await createEngineFixture({ servers: { databaseUrl: await postgres.createDatabase(), redisUrl: redis.url, redisPrefix: '{lost-lock-pg}' } });
    await fx.startRunner({}, { processors: (type) => (type === 'sleep' ? countsRuns : findProcessor(type)) });
  });
  afterAll(async () => {
    await fx?.close();
    await Promise.all([redis?.destroy(), postgres?.destroy()]);
  });

  it('keeps each lapse it could not write and writes it when PostgreSQL is back, so the job is no crash loop and succeeds', async () => {
    await expectSleepLivesThroughLapses(fx, sleeps, async () => {
      // PostgreSQL goes first, so the lapse comes while it refuses every write.
      await postgres.stop();
      redis.pause();
      try {
        await delay(FAST_STALL.lockDurationMs + 1_500);
        expect(sleeps.running).toBe(0);
      } finally {
        await postgres.start();
        redis.resume();
      }
    });
  }, 150_000);
});
