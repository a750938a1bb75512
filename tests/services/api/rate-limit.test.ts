import type { Request, Response } from 'express';
import { Redis } from 'ioredis';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { createLogger } from '../../../services/core/logger';
import { createRedisConnection } from '../../../services/core/queue/connection';
import { createLimiter, rateLimit } from '../../../services/api/middleware/rate-limit';
import { startRedis, type RedisServer } from '../../harness/redis';
import { useSharedServices } from '../../harness/shared';

const log = createLogger({ service: 'rate-limit-test', level: 'silent' });

/** Runs a rate-limit middleware once; true when the request may go on, false on 429. */
async function admitted(handler: ReturnType<typeof rateLimit>, userId: string): Promise<boolean> {
  let passed = false;
  try {
    await handler({ user: { userId }, log } as unknown as Request, {} as Response, () => (passed = true));
  } catch (error) {
    expect((error as { status?: number }).status).toBe(429);
    expect((error as { retryAfterSeconds?: number }).retryAfterSeconds).toBeGreaterThanOrEqual(1);
  }
  return passed;
}

describe('per-user rate limit with leased points', () => {
  let redis: Redis;
  let prefix: string;

  beforeAll(async () => {
    const shared = await useSharedServices();
    redis = new Redis(shared.redisUrl);
    // Until the connection is ready the limiter counts in memory per process (its insurance).
    await redis.ping();
    prefix = `${shared.redisPrefix}:rl:submit`;
  });
  afterAll(() => redis?.quit());

  it('never admits more than the limit per window across two API processes sharing Redis', async () => {
    // Two middleware instances stand for two API processes; a long window keeps the test on one window.
    const options = { redis, keyPrefix: prefix, points: 100, durationSeconds: 60 };
    const processes = [rateLimit(options, (req) => req.user!.userId), rateLimit(options, (req) => req.user!.userId)];
    let accepted = 0;
    for (let request = 0; request < 163; request += 1) if (await admitted(processes[request % 2]!, 'user-a')) accepted += 1;
    expect(accepted).toBeLessThanOrEqual(100);
    // A lease (5 points) that cannot be filled is lost: at most one per process.
    expect(accepted).toBeGreaterThanOrEqual(90);
    // Points are taken from Redis a lease at a time, not one request at a time.
    expect(Number(await redis.get(`${prefix}:user-a`)) % 5).toBe(0);
  });

  it('admits concurrent requests well under the limit: they share one lease request', async () => {
    const handler = rateLimit({ redis, keyPrefix: prefix, points: 1_000_000, durationSeconds: 60 }, (req) => req.user!.userId);
    const outcomes = await Promise.all(Array.from({ length: 200 }, () => admitted(handler, 'user-d')));
    expect(outcomes.every(Boolean)).toBe(true);
    expect(Number(await redis.get(`${prefix}:user-d`))).toBe(50_000);
  });

  it('admits a key refused in the last moments of its window from the next window, instead of telling it to come back in a second', async () => {
    const handler = rateLimit({ redis, keyPrefix: prefix, points: 40, durationSeconds: 1 }, (req) => req.user!.userId);
    // The window is spent and Redis ends it in 5 ms.
    await redis.set(`${prefix}:user-e`, 40, 'PX', 5);
    expect(await admitted(handler, 'user-e')).toBe(true);
    // One lease (2 points) in a fresh window of a second.
    expect(Number(await redis.get(`${prefix}:user-e`))).toBe(2);
    expect(await redis.pttl(`${prefix}:user-e`)).toBeGreaterThan(900);
  });

  it('counts users apart', async () => {
    const handler = rateLimit({ redis, keyPrefix: prefix, points: 40, durationSeconds: 60 }, (req) => req.user!.userId);
    for (let request = 0; request < 40; request += 1) expect(await admitted(handler, 'user-b')).toBe(true);
    expect(await admitted(handler, 'user-b')).toBe(false);
    expect(await admitted(handler, 'user-c')).toBe(true);
  });
});

describe('a limiter while its Redis hangs (stopped, connections open)', () => {
  let server: RedisServer;
  let connection: Redis;

  beforeAll(async () => {
    server = await startRedis();
    // The API's own kind of connection: its commands time out after a second.
    connection = createRedisConnection(server.url, 'client');
    await connection.ping();
  });
  afterAll(async () => {
    connection?.disconnect();
    await server?.destroy();
  });

  const outcome = (limiter: ReturnType<typeof createLimiter>, key: string) =>
    limiter.consume(key).then(
      () => 'admitted',
      (rejection: unknown) => (rejection instanceof RateLimiterRes ? 'limited' : 'failed'),
    );

  it('asks Redis once, keeps limiting on its own counters without asking again, and asks Redis again after a while', async () => {
    const limiter = createLimiter({ redis: connection, keyPrefix: 'hang', points: 3, durationSeconds: 60, redisRetryAfterMs: 500 });
    expect(await outcome(limiter, 'user')).toBe('admitted');

    server.pause();
    const whileHung: string[] = [];
    try {
      for (let request = 0; request < 4; request += 1) whileHung.push(await outcome(limiter, 'user'));
    } finally {
      server.resume();
    }
    // The process's own counters start at nothing and still hold the limit.
    expect(whileHung).toEqual(['admitted', 'admitted', 'admitted', 'limited']);
    // What was sent to the stopped server runs once it resumes, before this PING on the same connection.
    await connection.ping();
    // The call before the pause and the one that waited out the timeout: no other call asked Redis.
    expect(Number(await connection.get('hang:user'))).toBe(2);

    // Past redisRetryAfterMs the shared counters decide again: the third point there, then the limit.
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(await outcome(limiter, 'user')).toBe('admitted');
    expect(await outcome(limiter, 'user')).toBe('limited');
    expect(Number(await connection.get('hang:user'))).toBe(4);
  });

  it("sends every limiter on the connection to its own counters once one of them found Redis hung, so a request asking several waits out one timeout", async () => {
    const first = createLimiter({ redis: connection, keyPrefix: 'hang-first', points: 3, durationSeconds: 60, redisRetryAfterMs: 500 });
    const second = createLimiter({ redis: connection, keyPrefix: 'hang-second', points: 3, durationSeconds: 60, redisRetryAfterMs: 500 });
    server.pause();
    const whileHung: string[] = [];
    try {
      whileHung.push(await outcome(first, 'user'), await outcome(second, 'user'), await outcome(second, 'user'));
    } finally {
      server.resume();
    }
    expect(whileHung).toEqual(['admitted', 'admitted', 'admitted']);
    await connection.ping();
    // Only the first limiter's call reached Redis: the second never asked.
    expect(Number(await connection.get('hang-first:user'))).toBe(1);
    expect(await connection.exists('hang-second:user')).toBe(0);
  });
});

