/**
 * While Redis hangs, BullMQ's commands time out one after another, each a 'worker error'
 * with a stack: a 7-minute Redis pause left 33 such warnings per worker (found by an outside
 * walk), none of which an operator can act on. The first is a warning; the rest of the spell
 * are counted and logged at debug.
 * On a Redis of its own: the test pauses it.
 */
import { startRedis, type RedisServer } from '../../harness/redis';
import { useSharedServices } from '../../harness/shared';
import { createEngineFixture, waitFor, type EngineFixture } from './fixture';

describe('worker errors while Redis hangs', () => {
  let redis: RedisServer;
  let fx: EngineFixture;

  beforeAll(async () => {
    redis = await startRedis();
    const { databaseUrl } = await useSharedServices();
    fx = await createEngineFixture({ servers: { databaseUrl, redisUrl: redis.url, redisPrefix: '{worker-errors}' } });
  });
  afterAll(async () => {
    await fx?.close();
    await redis?.destroy();
  });

  it('warns once and counts the rest', async () => {
    await fx.startRunner();
    const warn = jest.spyOn(fx.log, 'warn');
    const debug = jest.spyOn(fx.log, 'debug');
    const warned = () => warn.mock.calls.filter(([, message]) => String(message).startsWith('worker error'));
    const counted = () => debug.mock.calls.filter(([, message]) => message === 'worker error');
    redis.pause();
    try {
      await waitFor('a second worker error', async () => counted().length >= 1, 90_000, 200);
      expect(warned()).toHaveLength(1);
    } finally {
      redis.resume();
      warn.mockRestore();
      debug.mockRestore();
    }
  }, 120_000);
});
