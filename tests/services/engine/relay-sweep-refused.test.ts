/**
 * A row the sweep found lost (missing at two looks) is handed over again; when Redis refuses
 * that (full under noeviction, found by a runbook drill), the sweep says so (`refused`) and
 * keeps the row noted, so the first sweep after Redis has room hands it over at once instead
 * of noting it anew and handing it over a sweep later. On a Redis of its own, made full.
 */
import { randomUUID } from 'node:crypto';
import { startRedis, type RedisServer } from '../../harness/redis';
import { useSharedServices } from '../../harness/shared';
import { createEngineFixture, type EngineFixture } from './fixture';

describe('relay sweep while Redis refuses writes', () => {
  let redis: RedisServer;
  let fx: EngineFixture;

  beforeAll(async () => {
    redis = await startRedis();
    const { databaseUrl } = await useSharedServices();
    fx = await createEngineFixture({ servers: { databaseUrl, redisUrl: redis.url, redisPrefix: '{sweep-refused}' } });
  });
  afterAll(async () => {
    await fx?.close();
    await redis?.destroy();
  });

  it('counts the lost rows Redis refused and hands them over at the first sweep once it has room', async () => {
    const id = randomUUID();
    // Queued minutes ago and never handed over.
    await fx.query("INSERT INTO jobs (id, owner_id, type, input, status, max_attempts, updated_at) VALUES ($1, $2, 'echo', '{}', 'queued', 3, now() - interval '10 minutes')", [id, fx.ownerId]);
    const admin = fx.core.redis.client;
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', '1');
    try {
      expect(await fx.core.relay.sweep()).toMatchObject({ ran: true, pending: 1, requeued: 0, refused: 0 });
      expect(await fx.core.relay.sweep()).toMatchObject({ ran: true, pending: 0, requeued: 0, refused: 1 });
    } finally {
      await admin.config('SET', 'maxmemory', '0');
    }
    expect(await fx.core.relay.sweep()).toMatchObject({ ran: true, pending: 0, requeued: 1, refused: 0 });
    expect(await fx.core.relay.queue.getJob(id)).toBeDefined();
  });
});
