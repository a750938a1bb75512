/**
 * Redis letting a worker's locks lapse and PostgreSQL being away often go together (a
 * partitioned node, a host that stood still). The worker records each lapse that was
 * Redis's doing, so a long job is not dead-lettered as a crash loop for outages it lived
 * through (lost-lock.test.ts); when PostgreSQL cannot take that record at the moment of the
 * lapse, the worker keeps it and writes it once PostgreSQL is back.
 * On a PostgreSQL and a Redis of its own: the test stops the one and pauses the other.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { sleep } from '../../../services/contract';
import { findProcessor } from '../../../services/worker/jobs';
import { defineProcessor, type Processor } from '../../../services/worker/processor';
import { startPostgres, type PostgresServer } from '../../harness/postgres';
import { startRedis, type RedisServer } from '../../harness/redis';
import { createEngineFixture, statusOf, submission, waitFor, type EngineFixture } from './fixture';
import { FAST_STALL } from './stall';

describe('job engine: a lock lapse while PostgreSQL is away too', () => {
  let postgres: PostgresServer;
  let redis: RedisServer;
  let fx: EngineFixture;
  const sleeps = { runs: 0, running: 0, mostAtOnce: 0 };

  const countsRuns = defineProcessor(sleep, async ({ input, signal }) => {
    sleeps.runs += 1;
    sleeps.running += 1;
    sleeps.mostAtOnce = Math.max(sleeps.mostAtOnce, sleeps.running);
    try {
      await delay(input.ms, undefined, { signal });
      return { result: { sleptMs: input.ms } };
    } finally {
      sleeps.running -= 1;
    }
  }) as unknown as Processor;

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
    const outages = FAST_STALL.maxStalledCount + 1;
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 6_000 }, maxAttempts: 1 }));
    for (let outage = 1; outage <= outages; outage += 1) {
      await waitFor(`run ${outage} to begin`, async () => sleeps.runs === outage && sleeps.running === 1 && (await statusOf(fx, job.id)) === 'running', 30_000);
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
    }

    await waitFor('the job to succeed', async () => {
      const status = await statusOf(fx, job.id);
      if (status === 'failed') throw new Error(`dead-lettered: ${(await fx.one<{ error: string }>('SELECT error FROM jobs WHERE id = $1', [job.id])).error}`);
      return status === 'succeeded';
    }, 40_000);
    expect(sleeps.runs).toBe(outages + 1);
    expect(sleeps.mostAtOnce).toBe(1);
    const row = await fx.one<{ attempts: number; lock_lapses: number }>('SELECT attempts, lock_lapses FROM jobs WHERE id = $1', [job.id]);
    expect(row).toEqual({ attempts: 1, lock_lapses: outages });
  }, 150_000);
});
