import { call, countRows, signUp, startApi, type ApiFixture } from './fixture';

interface Job {
  id: string;
  type: string;
  status: string;
}

describe('job routes', () => {
  let api: ApiFixture;
  let alice: string;
  let bob: string;

  beforeAll(async () => {
    // The races below send several writes of one user at once: more than JOB_WRITES_AT_ONCE_PER_USER lets run, which is not what they test.
    api = await startApi({ env: { JOB_WRITES_AT_ONCE_PER_USER: '100' } });
    alice = (await signUp(api)).token;
    bob = (await signUp(api)).token;
  });

  afterAll(async () => {
    await api.close();
  });

  const submit = (token: string, json: unknown, headers?: Record<string, string>) => call<Job & Record<string, unknown>>(api, '/v1/jobs', { token, json, headers });

  it('accepts a job with 202, a Location and the job view', async () => {
    const response = await submit(alice, { type: 'echo', input: { payload: { hello: 'world' } }, priority: 5 });
    expect(response.status).toBe(202);
    expect(response.headers.get('location')).toBe(`/v1/jobs/${response.body.id}`);
    expect(response.body).toMatchObject({ type: 'echo', status: 'queued', priority: 5, input: { payload: { hello: 'world' } }, result: null });
    const read = await call(api, `/v1/jobs/${response.body.id}`, { token: alice });
    expect(read.status).toBe(200);
    expect(read.body.id).toBe(response.body.id);
  });

  it('refuses a fan-out that names one file twice, also when the second names it in capitals (one uuid to PostgreSQL), storing nothing', async () => {
    const file = await call<{ id: string }>(api, '/v1/files', { token: alice, body: 'hello', headers: { 'content-type': 'text/plain' } });
    expect(file.status).toBe(201);
    const before = await countRows(api, 'jobs');
    for (const fileIds of [[file.body.id, file.body.id], [file.body.id, file.body.id.toUpperCase()]]) {
      const refused = await submit(alice, { type: 'files.checksum', input: { fileIds } });
      expect(refused.status).toBe(400);
      expect(refused.body.errors).toEqual([{ field: 'body.input.fileIds', message: 'must not name a file twice' }]);
    }
    expect(await countRows(api, 'jobs')).toBe(before);
  });

  it('rejects an unknown type, bad input and a bad envelope with 400 and field errors, storing nothing', async () => {
    const before = await countRows(api, 'jobs');
    const unknown = await submit(alice, { type: 'no.such.type', input: {} });
    expect(unknown.status).toBe(400);
    expect(unknown.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const internal = await submit(alice, { type: 'email.send', input: { to: 'a@example.com', subject: 'x', text: 'y' } });
    expect(internal.status).toBe(400);
    const badInput = await submit(alice, { type: 'sleep', input: { ms: -1 } });
    expect(badInput.status).toBe(400);
    expect(badInput.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ field: expect.stringContaining('ms') })]));
    const badEnvelope = await submit(alice, { type: 'echo', input: {}, maxAttempts: 0, extra: true });
    expect(badEnvelope.status).toBe(400);
    expect(badEnvelope.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'body.maxAttempts' })]));
    expect(await countRows(api, 'jobs')).toBe(before);
  });

  it('returns the same job for a repeated Idempotency-Key and body, and 409 for another body', async () => {
    const key = { 'idempotency-key': 'order-42' };
    const first = await submit(alice, { type: 'echo', input: { payload: 1 } }, key);
    const again = await submit(alice, { type: 'echo', input: { payload: 1 } }, key);
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.body.id).toBe(first.body.id);
    const other = await submit(alice, { type: 'echo', input: { payload: 2 } }, key);
    expect(other.status).toBe(409);
    const sameKeyOtherUser = await submit(bob, { type: 'echo', input: { payload: 2 } }, key);
    expect(sameKeyOtherUser.status).toBe(202);
    expect(sameKeyOtherUser.body.id).not.toBe(first.body.id);
    const badKey = await submit(alice, { type: 'echo', input: {} }, { 'idempotency-key': 'spaces are not allowed' });
    expect(badKey.status).toBe(400);
    expect(badKey.body.errors).toEqual([expect.objectContaining({ field: 'Idempotency-Key' })]);
  });

  it('answers every submit of a fan-out job under one Idempotency-Key, at once, with the same job, task counts included', async () => {
    const key = { 'idempotency-key': 'batch-7' };
    const answers = await Promise.all(Array.from({ length: 5 }, () => submit(alice, { type: 'echo.batch', input: { count: 3 } }, key)));
    expect(answers.map((answer) => answer.status)).toEqual([202, 202, 202, 202, 202]);
    const [first] = answers;
    expect(first?.body.tasks).toMatchObject({ total: 3, queued: 3 });
    for (const answer of answers) expect(answer.body).toEqual(first?.body);
    const { rows } = await api.db.query<{ count: number }>('SELECT count(*)::int AS count FROM jobs WHERE parent_id = $1', [first?.body.id]);
    expect(rows[0]?.count).toBe(3);
  });

  it('hides another user\'s job and malformed ids behind 404', async () => {
    const { body: job } = await submit(alice, { type: 'echo', input: {} });
    expect((await call(api, `/v1/jobs/${job.id}`, { token: bob })).status).toBe(404);
    expect((await call(api, `/v1/jobs/${job.id}/cancel`, { token: bob, method: 'POST' })).status).toBe(404);
    expect((await call(api, `/v1/jobs/${job.id}/events`, { token: bob })).status).toBe(404);
    expect((await call(api, '/v1/jobs/12345', { token: alice })).status).toBe(404);
    expect((await call(api, `/v1/jobs/${job.id}`)).status).toBe(401);
  });

  it('lists the caller\'s jobs newest first with a cursor', async () => {
    const { token } = await signUp(api);
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) ids.push((await submit(token, { type: 'echo', input: { payload: i } })).body.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `?limit=2&cursor=${encodeURIComponent(cursor)}` : '?limit=2';
      const page = await call<{ items: Job[]; nextCursor: string | null }>(api, `/v1/jobs${query}`, { token });
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((job) => job.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    const filtered = await call<{ items: Job[] }>(api, '/v1/jobs?type=sleep', { token });
    expect(filtered.body.items).toEqual([]);
    expect((await call(api, '/v1/jobs?limit=1000', { token })).status).toBe(400);
    expect((await call(api, '/v1/jobs?status=bogus', { token })).status).toBe(400);
  });

  it('cancels a queued job and answers 409 once it is terminal; retries it after', async () => {
    const { body: job } = await submit(alice, { type: 'sleep', input: { ms: 60_000 } });
    const cancelled = await call(api, `/v1/jobs/${job.id}/cancel`, { token: alice, method: 'POST' });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');
    const again = await call(api, `/v1/jobs/${job.id}/cancel`, { token: alice, method: 'POST' });
    expect(again.status).toBe(409);
    expect(again.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const retried = await call(api, `/v1/jobs/${job.id}/retry`, { token: alice, method: 'POST' });
    expect(retried.status).toBe(202);
    expect(retried.body.status).toBe('queued');
    await call(api, `/v1/jobs/${job.id}/cancel`, { token: alice, method: 'POST' });
  });

  it('answers concurrent retries of a cancelled fan-out job once with 202 and the rest with 409 saying its status now', async () => {
    const { body: job } = await submit(alice, { type: 'echo.batch', input: { count: 20 } });
    expect((await call(api, `/v1/jobs/${job.id}/cancel`, { token: alice, method: 'POST' })).status).toBe(200);
    const retries = await Promise.all(Array.from({ length: 8 }, () => call(api, `/v1/jobs/${job.id}/retry`, { token: alice, method: 'POST' })));
    expect(retries.filter((response) => response.status === 202)).toHaveLength(1);
    const now = (await call<Job>(api, `/v1/jobs/${job.id}`, { token: alice })).body.status;
    expect(now).not.toBe('cancelled');
    // Those that lost the race read the job as cancelled first; their answer must not say it still is.
    for (const refused of retries.filter((response) => response.status !== 202)) {
      expect(refused.status).toBe(409);
      expect(refused.body.detail).not.toMatch(/cancelled/);
    }
    await call(api, `/v1/jobs/${job.id}/cancel`, { token: alice, method: 'POST' });
  });

  it('streams state changes as Server-Sent Events, resumes after Last-Event-ID and ends after a terminal state', async () => {
    const { body: job } = await submit(alice, { type: 'sleep', input: { ms: 60_000 } });
    const stream = await fetch(`${api.baseUrl}/v1/jobs/${job.id}/events`, { headers: { authorization: `Bearer ${alice}` } });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    await call(api, `/v1/jobs/${job.id}/cancel`, { token: alice, method: 'POST' });
    const text = await stream.text();
    const events = text
      .split('\n\n')
      .filter((block) => block.includes('data: '))
      .map((block) => ({
        id: /^id: (\d+)$/m.exec(block)?.[1],
        data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') as { to: string; jobId: string },
      }));
    expect(events.map((event) => event.data.to)).toEqual(expect.arrayContaining(['queued', 'cancelled']));
    expect(events.at(-1)?.data).toMatchObject({ jobId: job.id, to: 'cancelled' });

    const resumed = await fetch(`${api.baseUrl}/v1/jobs/${job.id}/events`, { headers: { authorization: `Bearer ${alice}`, 'last-event-id': String(events.at(-1)?.id) } });
    expect(resumed.status).toBe(200);
    expect(await resumed.text()).not.toContain('data: ');
  });
});

describe('job submission rate limit', () => {
  let api: ApiFixture;

  beforeAll(async () => {
    api = await startApi({ env: { SUBMIT_RATE_LIMIT_PER_SECOND: '1' } });
  });

  afterAll(async () => {
    await api.close();
  });

  it('answers 429 with Retry-After past the per-user limit, and counts users apart', async () => {
    const alice = (await signUp(api)).token;
    const bob = (await signUp(api)).token;
    const burst = await Promise.all(Array.from({ length: 10 }, () => call(api, '/v1/jobs', { token: alice, json: { type: 'echo', input: {} } })));
    const limited = burst.filter((response) => response.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0]?.headers.get('retry-after')).toBe('1');
    expect((await call(api, '/v1/jobs', { token: bob, json: { type: 'echo', input: {} } })).status).toBe(202);
  });
});

describe('job writes of one user at once', () => {
  let api: ApiFixture;
  let alice: string;
  let bob: string;

  beforeAll(async () => {
    api = await startApi({ env: { JOB_WRITES_AT_ONCE_PER_USER: '2' } });
    alice = (await signUp(api)).token;
    bob = (await signUp(api)).token;
  });

  afterAll(async () => {
    await api.close();
  });

  const submit = (token: string, json: unknown) => call<Job & Record<string, unknown>>(api, '/v1/jobs', { token, json });

  it('runs at most two cancels, retries, deletes and fan-out submits of one user at once (429 with Retry-After), without holding up another user', async () => {
    const ids = [];
    for (let count = 0; count < 3; count += 1) ids.push((await submit(alice, { type: 'echo', input: {} })).body.id);
    const [first, second, third] = ids as [string, string, string];
    const bobs = (await submit(bob, { type: 'echo', input: {} })).body.id;
    // Two of alice's cancels wait on row locks held here, as writes over thousands of tasks hold the database for seconds.
    const holder = await api.db.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM jobs WHERE id = ANY($1::uuid[]) FOR UPDATE', [[first, second]]);
      const held = [first, second].map((id) => call(api, `/v1/jobs/${id}/cancel`, { method: 'POST', token: alice }));
      const waiting = async () => (await api.db.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")).rows[0]?.n;
      for (let tries = 0; (await waiting()) !== 2 && tries < 200; tries += 1) await new Promise((resolve) => setTimeout(resolve, 25));
      expect(await waiting()).toBe(2);

      const refused = await call(api, `/v1/jobs/${third}/cancel`, { method: 'POST', token: alice });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect((await call(api, `/v1/jobs/${third}/retry`, { method: 'POST', token: alice })).status).toBe(429);
      expect((await submit(alice, { type: 'echo.batch', input: { count: 2 } })).status).toBe(429);
      // A job of one row is never held up by the writes of fan-outs.
      expect((await submit(alice, { type: 'echo', input: {} })).status).toBe(202);
      expect((await call(api, `/v1/jobs/${bobs}/cancel`, { method: 'POST', token: bob })).status).toBe(200);

      await holder.query('ROLLBACK');
      expect((await Promise.all(held)).map((response) => response.status)).toEqual([200, 200]);
    } finally {
      holder.release();
    }
    expect((await call(api, `/v1/jobs/${third}/cancel`, { method: 'POST', token: alice })).status).toBe(200);
  });
});
