import { startPostgres, type PostgresServer } from '../../harness/postgres';
import { startRedis, type RedisServer } from '../../harness/redis';
import { call, makeAdmin, signUp, startApi, type ApiFixture, type CallResult } from './fixture';

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

  it('turns 503 within its check deadline while PostgreSQL hangs (stopped, not closed), naming the deadline', async () => {
    postgres.pause();
    let ready: CallResult;
    let tookMs: number;
    try {
      const started = Date.now();
      // Abandoned (and the test fails) only if no answer comes at all within 10 s.
      ready = await call(api, '/readyz', { signal: AbortSignal.timeout(10_000) });
      tookMs = Date.now() - started;
    } finally {
      postgres.resume();
    }
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ checks: { postgres: 'PostgreSQL did not answer in the time allowed', redis: 'ok' } });
    // The check's own deadline (2 s) and no more: nothing waits on the hung server past it.
    expect(tookMs).toBeLessThan(4_000);
    await readyzBecomes(api, 200);
  });

  it('stays ready (degraded, naming Redis) while Redis is down, since submissions still reach PostgreSQL', async () => {
    await redis.stop();
    try {
      let body: Record<string, unknown> = {};
      for (let tries = 0; tries < 100 && body.status !== 'degraded'; tries += 1) {
        const response = await call(api, '/readyz');
        expect(response.status).toBe(200);
        body = response.body;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(body).toMatchObject({ status: 'degraded', checks: { postgres: 'ok' } });
      expect((body.checks as Record<string, string>).redis).not.toBe('ok');
    } finally {
      await redis.start();
    }
    // Degraded is a 200 too: ready again once the API's connection to Redis is back.
    for (let body = await readyzBecomes(api, 200); body.status !== 'ready'; body = await readyzBecomes(api, 200)) {
      expect(body).toMatchObject({ status: 'degraded' });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  it('answers submissions and stays ready while Redis hangs (stopped, not closed)', async () => {
    const { token } = await signUp(api);
    redis.pause();
    try {
      // A hung dependency must cost a request a bounded wait, not the request: the call is
      // abandoned (and the test fails) only if no answer comes at all within 10 s.
      const submitted = await call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: 'while Redis hangs' } }, signal: AbortSignal.timeout(10_000) });
      expect(submitted.status).toBe(202);
      const ready = await call(api, '/readyz', { signal: AbortSignal.timeout(10_000) });
      expect(ready.status).toBe(200);
      expect(ready.body).toMatchObject({ status: 'degraded', checks: { postgres: 'ok' } });
    } finally {
      redis.resume();
    }
    await readyzBecomes(api, 200);
  });

  it('answers the admin queue operations 503 with Retry-After while Redis hangs, as the document declares them', async () => {
    const document = (await call<{ paths: Record<string, Record<string, { responses: Record<string, { headers?: Record<string, unknown> }> }>> }>(api, '/openapi.json')).body;
    const admin = await makeAdmin(api, (await signUp(api)).userId);
    const operations = [['GET', '/v1/admin/queues'], ['POST', '/v1/admin/queues/pause'], ['POST', '/v1/admin/queues/resume']] as const;
    redis.pause();
    let answers: CallResult[];
    try {
      answers = await Promise.all(operations.map(([method, path]) => call(api, path, { method, token: admin, signal: AbortSignal.timeout(20_000) })));
    } finally {
      redis.resume();
    }
    operations.forEach(([method, path], index) => {
      const answer = answers[index]!;
      expect({ path, status: answer.status, type: answer.headers.get('content-type'), retryAfter: answer.headers.get('retry-after') }).toEqual({
        path,
        status: 503,
        type: expect.stringMatching(/^application\/problem\+json/),
        retryAfter: expect.stringMatching(/^[0-9]+$/),
      });
      expect(answer.body.detail).toMatch(/Redis/);
      expect(Object.keys(document.paths[path]?.[method.toLowerCase()]?.responses['503']?.headers ?? {})).toContain('Retry-After');
    });
    await readyzBecomes(api, 200);
    // Once Redis answers again, so do they; the queue is left running.
    expect((await call(api, '/v1/admin/queues/resume', { method: 'POST', token: admin })).status).toBe(204);
    expect((await call(api, '/v1/admin/queues', { token: admin })).status).toBe(200);
  });

  it('keeps rate-limited routes answering while Redis is down', async () => {
    await redis.stop();
    try {
      const login = await call(api, '/v1/auth/login', { json: { email: 'nobody@example.com', password: 'some password' } });
      expect(login.status).toBe(401);
    } finally {
      await redis.start();
    }
    await readyzBecomes(api, 200);
  });

  it('answers a logout, and a reused refresh token, 503 with Retry-After while Redis cannot announce the revocation; the logout asked again is 204', async () => {
    const { email } = await signUp(api);
    const login = await call(api, '/v1/auth/login', { json: { email, password: 'correct horse battery staple' } });
    const cookieOf = (response: CallResult) => response.headers.get('set-cookie')!.split(';')[0]!;
    const first = cookieOf(login);
    // Two refreshes in a row: the first token, presented again, is a reuse (no longer a reload's retry).
    const second = cookieOf(await call(api, '/v1/auth/refresh', { method: 'POST', headers: { cookie: first } }));
    await call(api, '/v1/auth/refresh', { method: 'POST', headers: { cookie: second } });
    const { token } = await signUp(api);
    await redis.stop();
    try {
      for (const refused of [
        await call(api, '/v1/auth/logout', { method: 'POST', token }),
        await call(api, '/v1/auth/refresh', { method: 'POST', headers: { cookie: first } }),
      ]) {
        expect({ status: refused.status, type: refused.headers.get('content-type') }).toEqual({ status: 503, type: expect.stringMatching(/^application\/problem\+json/) });
        expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
        expect(refused.body.detail).toMatch(/Redis/);
      }
    } finally {
      await redis.start();
    }
    await readyzBecomes(api, 200);
    expect((await call(api, '/v1/auth/logout', { method: 'POST', token })).status).toBe(204);
    expect((await call(api, '/v1/auth/me', { token })).status).toBe(401);
  });

  it('answers a submission 503 with Retry-After while PostgreSQL is down, and accepts it again once it is back', async () => {
    const { token } = await signUp(api);
    await postgres.stop();
    try {
      const refused = await call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: 1 } } });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(refused.headers.get('content-type')).toMatch(/application\/problem\+json/);
      const read = await call(api, '/v1/jobs', { token });
      expect(read.status).toBe(503);
    } finally {
      await postgres.start();
    }
    await readyzBecomes(api, 200);
    const accepted = await call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: 2 } } });
    expect(accepted.status).toBe(202);
  });

  it('answers a submission 503 while PostgreSQL is hung, and writes nothing of it when the server resumes', async () => {
    const { token, userId } = await signUp(api);
    // A submit that commits first, so the batch pool holds an open session, as it does under load.
    expect((await call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: 'before the hang' } } })).status).toBe(202);
    const sessions = await api.db.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE '%-batches'");
    const batchSessions = sessions.rows.map((row) => row.pid);
    expect(batchSessions.length).toBeGreaterThan(0);

    postgres.pause();
    let refused: Awaited<ReturnType<typeof call>>;
    try {
      refused = await call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: 'while hung' } } });
    } finally {
      postgres.resume();
    }
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(refused.headers.get('content-type')).toMatch(/application\/problem\+json/);

    // The API dropped the session that carried the refused submit; once the server has caught
    // up with what was sent on it, that session is gone and its work settled one way or the other.
    for (;;) {
      const alive = await api.db.query<{ count: number }>('SELECT count(*)::int AS count FROM pg_stat_activity WHERE pid = ANY($1)', [batchSessions]);
      if ((alive.rows[0]?.count ?? 0) < batchSessions.length) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const stored = await api.db.query<{ payload: string }>("SELECT input->>'payload' AS payload FROM jobs WHERE owner_id = $1 ORDER BY created_at", [userId]);
    expect(stored.rows.map((row) => row.payload)).toEqual(['before the hang']);

    await readyzBecomes(api, 200);
    expect((await call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: 'after' } } })).status).toBe(202);
  });

  it('answers reads 503 within a request-sized wait while PostgreSQL is hung, and 200 once it resumes', async () => {
    const { token } = await signUp(api);
    const submitted = await call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: 'read me' } } });
    expect(submitted.status).toBe(202);
    const jobId = (submitted.body as { id: string }).id;
    // Reads first, so the general pool holds open sessions, as it does under load.
    expect((await call(api, '/v1/jobs', { token })).status).toBe(200);
    expect((await call(api, `/v1/jobs/${jobId}`, { token })).status).toBe(200);

    postgres.pause();
    let list: Awaited<ReturnType<typeof call>>;
    let single: Awaited<ReturnType<typeof call>>;
    try {
      // Abandoned (and the test fails) only if no answer comes within 10 s; the pool's
      // background bound (20 s) would let a hung server hold the request that long.
      [list, single] = await Promise.all([
        call(api, '/v1/jobs', { token, signal: AbortSignal.timeout(10_000) }),
        call(api, `/v1/jobs/${jobId}`, { token, signal: AbortSignal.timeout(10_000) }),
      ]);
    } finally {
      postgres.resume();
    }
    for (const refused of [list, single]) {
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(refused.headers.get('content-type')).toMatch(/application\/problem\+json/);
    }
    await readyzBecomes(api, 200);
    expect((await call(api, `/v1/jobs/${jobId}`, { token })).status).toBe(200);
  });

  it('once a request finds PostgreSQL hung, refuses the next ones at once without asking it, and lets them through again when a probe is answered', async () => {
    const { token } = await signUp(api);
    const availability = async () => Number(/^platform_postgres_available(?:\{[^}]*\})? (\d)$/m.exec((await call(api, '/metrics')).text)?.[1]);
    expect(await availability()).toBe(1);
    const awayWarnings = () => api.logLines.filter((line) => String(line.msg).startsWith('PostgreSQL is away')).length;
    const warnedBefore = awayWarnings();

    postgres.pause();
    let found: CallResult;
    let refused: CallResult[];
    let whileAway: number;
    let catalog: CallResult;
    try {
      // This one asks PostgreSQL and waits out its deadline.
      found = await call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: 'finds it hung' } }, signal: AbortSignal.timeout(10_000) });
      // These are refused by the API itself: a request that waited on the hung server would get the first one's detail.
      refused = await Promise.all([
        call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: 'refused' } } }),
        call(api, '/v1/jobs', { token }),
        call(api, '/v1/auth/login', { json: { email: 'nobody@example.com', password: 'some password' } }),
      ]);
      whileAway = await availability();
      catalog = await call(api, '/v1/job-types');
    } finally {
      postgres.resume();
    }
    expect(found.status).toBe(503);
    expect(found.body.detail).toBe('the database is unavailable; try again shortly');
    for (const response of refused) {
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(response.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(response.body.detail).toMatch(/found it away moments ago/);
    }
    expect(whileAway).toBe(0);
    // What answers without PostgreSQL still does.
    expect(catalog.status).toBe(200);
    // One warning for the outage, not one per refused request.
    expect(awayWarnings()).toBe(warnedBefore + 1);

    // The probe, not a readiness check, lets requests through again.
    while ((await availability()) !== 1) await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: 'after' } } })).status).toBe(202);
    expect(api.logLines).toContainEqual(expect.objectContaining({ msg: 'PostgreSQL answers again: requests are sent to it' }));
  });

  it('answers a read 503 with Retry-After when PostgreSQL cannot run it in time (a lock held elsewhere)', async () => {
    const { token } = await signUp(api);
    const submitted = await call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: 'locked away' } } });
    const jobId = (submitted.body as { id: string }).id;
    const holder = await api.db.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE');
      const read = await call(api, `/v1/jobs/${jobId}`, { token, signal: AbortSignal.timeout(10_000) });
      expect(read.status).toBe(503);
      expect(read.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(read.body).toMatchObject({ status: 503, detail: expect.stringMatching(/did not answer in time/) });
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    expect((await call(api, `/v1/jobs/${jobId}`, { token })).status).toBe(200);
  });

  it("refuses submits 503 and says why while PostgreSQL's clock runs a minute ahead of the API's", async () => {
    const { token } = await signUp(api);
    // PostgreSQL's view of when a statement started, a minute later than it is.
    const ahead = (offset: string) =>
      api.db.query(`CREATE OR REPLACE FUNCTION require_started_before(deadline timestamptz) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          IF deadline IS NOT NULL AND statement_timestamp() + interval '${offset}' >= deadline THEN
            RAISE EXCEPTION 'the statement started % after the time its caller allowed', statement_timestamp() + interval '${offset}' - deadline USING ERRCODE = 'query_canceled';
          END IF;
          RETURN true;
        END $$`);
    await ahead('1 minute');
    try {
      const refused = await call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: 'early' } } });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(api.logLines).toContainEqual(expect.objectContaining({ level: 'error', msg: expect.stringMatching(/its clock runs ahead of this host's; see platform doctor's clock check/) }));
    } finally {
      await ahead('0 seconds');
    }
    expect((await call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: 'in time' } } })).status).toBe(202);
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
