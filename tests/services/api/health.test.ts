import { startPostgres, type PostgresServer } from '../../harness/postgres';
import { startRedis, type RedisServer } from '../../harness/redis';
import { call, startApi, type ApiFixture } from './fixture';

/** Polls /readyz until it answers `status`; a dependency coming back takes a reconnect or two. */
async function readyzBecomes(api: ApiFixture, status: number): Promise<Record<string, unknown>> {
  for (;;) {
    const response = await call(api, '/readyz');
    if (response.status === status) return response.body;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('health routes against private servers', () => {
  let postgres: PostgresServer;
  let redis: RedisServer;
  let api: ApiFixture;

  beforeAll(async () => {
    [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
    api = await startApi({ servers: { databaseUrl: await postgres.createDatabase(), redisUrl: redis.url, redisPrefix: '{api-health}' } });
  });

  afterAll(async () => {
    await api?.close();
    await Promise.all([postgres?.destroy(), redis?.destroy()]);
  });

  it('is live and ready when both dependencies answer', async () => {
    expect((await call(api, '/healthz')).body).toEqual({ status: 'ok' });
    const ready = await call(api, '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ready', checks: { postgres: 'ok', redis: 'ok' } });
  });

  it('turns 503 naming PostgreSQL while it is down, and 200 when it is back', async () => {
    await postgres.stop();
    try {
      const problem = await readyzBecomes(api, 503);
      expect(problem).toMatchObject({ status: 503, checks: { redis: 'ok' } });
      expect((problem.checks as Record<string, string>).postgres).not.toBe('ok');
      expect(problem.detail).toMatch(/postgres/);
      expect((await call(api, '/healthz')).status).toBe(200);
    } finally {
      await postgres.start();
    }
    await readyzBecomes(api, 200);
  });

  it('turns 503 naming Redis while it is down, and 200 when it is back', async () => {
    await redis.stop();
    try {
      const problem = await readyzBecomes(api, 503);
      expect(problem).toMatchObject({ status: 503, checks: { postgres: 'ok' } });
      expect(problem.detail).toMatch(/redis/);
    } finally {
      await redis.start();
    }
    await readyzBecomes(api, 200);
  });

  it('keeps rate-limited routes answering while Redis is down', async () => {
    await redis.stop();
    try {
      await readyzBecomes(api, 503);
      const login = await call(api, '/v1/auth/login', { json: { email: 'nobody@example.com', password: 'some password' } });
      expect(login.status).toBe(401);
    } finally {
      await redis.start();
    }
    await readyzBecomes(api, 200);
  });

  it('turns 503 while draining, before the listener closes', async () => {
    api.lifecycle.draining = true;
    try {
      const response = await call(api, '/readyz');
      expect(response.status).toBe(503);
      expect(response.body.detail).toBe('the server is draining');
      expect(response.headers.get('connection')).toBe('close');
    } finally {
      api.lifecycle.draining = false;
    }
  });
});
