import { connect } from 'node:net';
import { TransitionWriter } from '../../../services/core/jobs/transitions';
import { call, signUp, startApi, type ApiFixture } from './fixture';
import { login } from './identity-helpers';
import { SseClient } from './sse-client';

const PASSWORD = 'correct horse battery staple';

const hasEvent = (jobId: string, to: string) => (client: SseClient) => client.events.some((event) => event.data.jobId === jobId && event.data.to === to);

describe('job event streams', () => {
  let api: ApiFixture;
  let writer: TransitionWriter;
  let alice: { token: string; userId: string };

  beforeAll(async () => {
    // Hundreds of streams in a minute: past the per-user rate of new streams (STREAM_RATE_LIMIT_PER_MINUTE), which is not what this tests.
    api = await startApi({ env: { EVENT_STREAMS_PER_USER: '1000', EVENT_STREAMS_PER_ADDRESS: '1000', EVENT_STREAMS_MAX: '2000', STREAM_RATE_LIMIT_PER_MINUTE: '100000' } });
    writer = new TransitionWriter({ batchPool: api.core.batchPool, generalPool: api.core.generalPool, log: api.core.log });
    alice = await signUp(api);
  });
  afterAll(async () => {
    await writer.close();
    await api.close();
  });

  async function submitEcho(token: string): Promise<string> {
    const response = await call<{ id: string }>(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: 1 } } });
    expect(response.status).toBe(202);
    return response.body.id;
  }

  /** Runs jobs one after another as a worker would report them, each once every client has seen its success. */
  async function completeOneByOne(jobIds: string[], clients: SseClient[]): Promise<void> {
    for (const jobId of jobIds) {
      const at = Date.now();
      void writer.record({ event: 'start', jobId, attempt: 1, at, from: 'queued' });
      await writer.record({ event: 'succeed', jobId, attempt: 1, at, result: { payload: 1 } });
      await Promise.all(clients.map((client) => client.until(`${jobId} to succeed`, hasEvent(jobId, 'succeeded'))));
    }
  }

  /** Queries the API process makes on its pool, and reads of notified rows, while `work` runs. */
  async function databaseCost(work: () => Promise<void>): Promise<{ queries: number; reads: number }> {
    let queries = 0;
    const count = () => (queries += 1);
    api.core.generalPool.on('acquire', count);
    const readsBefore = api.core.events.reads;
    try {
      await work();
    } finally {
      api.core.generalPool.off('acquire', count);
    }
    return { queries, reads: api.core.events.reads - readsBefore };
  }

  it('300 open streams cost the database what one does: one read per committed write, whatever the number of streams', async () => {
    const first = await SseClient.open(api, '/v1/jobs/events', alice.token);
    expect(first.status).toBe(200);
    const oneStreamJobs = [await submitEcho(alice.token), await submitEcho(alice.token), await submitEcho(alice.token)];
    await first.until('the submits', (client) => oneStreamJobs.every((id) => hasEvent(id, 'queued')(client)));
    const withOne = await databaseCost(() => completeOneByOne(oneStreamJobs, [first]));

    const many = [first];
    for (let batch = 0; batch < 299; batch += 50) {
      many.push(...(await Promise.all(Array.from({ length: Math.min(50, 299 - batch) }, () => SseClient.open(api, '/v1/jobs/events', alice.token)))));
    }
    expect(many.every((client) => client.status === 200)).toBe(true);
    const manyStreamJobs = [await submitEcho(alice.token), await submitEcho(alice.token), await submitEcho(alice.token)];
    await Promise.all(many.map((client) => client.until('the submits', (c) => manyStreamJobs.every((id) => hasEvent(id, 'queued')(c)))));
    const withMany = await databaseCost(() => completeOneByOne(manyStreamJobs, many));

    expect(withOne).toEqual({ queries: 3, reads: 3 });
    expect(withMany).toEqual(withOne);
    // Every stream saw every job's events, each job's in the order they were written.
    for (const client of many.slice(1)) {
      for (const jobId of manyStreamJobs) {
        expect(client.events.filter((event) => event.data.jobId === jobId).map((event) => event.data.to)).toEqual(['queued', 'running', 'succeeded']);
      }
    }
    for (const client of many) client.close();
  }, 60_000);

  it('a job\'s stream: its events in order, ended after its terminal state; a resume after Last-Event-ID sends the rest once', async () => {
    const jobId = await submitEcho(alice.token);
    const stream = await SseClient.open(api, `/v1/jobs/${jobId}/events`, alice.token);
    await stream.until('the creation event', hasEvent(jobId, 'queued'));
    const at = Date.now();
    await writer.record({ event: 'start', jobId, attempt: 1, at, from: 'queued' });
    await writer.record({ event: 'retry', jobId, attempt: 1, at, error: 'boom', retryInMs: 10 });
    await writer.record({ event: 'start', jobId, attempt: 2, at, from: 'queued' });
    await writer.record({ event: 'succeed', jobId, attempt: 2, at, result: { payload: 1 } });
    await stream.until('the stream to end', (client) => client.ended);
    expect(stream.events.map((event) => event.data.to)).toEqual(['queued', 'running', 'queued', 'running', 'succeeded']);
    const ids = stream.events.map((event) => event.id);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);

    const resumed = await SseClient.open(api, `/v1/jobs/${jobId}/events`, alice.token, ids[1]);
    await resumed.until('the resumed stream to end', (client) => client.ended);
    expect(resumed.events.map((event) => event.id)).toEqual(ids.slice(2));
  });

  it('a fan-out job\'s stream carries its tasks\' events, and the tasks route pages them with the counts', async () => {
    const submitted = await call<{ id: string; status: string; tasks: { total: number } }>(api, '/v1/jobs', { token: alice.token, json: { type: 'echo.batch', input: { count: 3 } } });
    expect(submitted.status).toBe(202);
    expect(submitted.body).toMatchObject({ status: 'waiting', tasks: { total: 3, queued: 3 } });
    const parentId = submitted.body.id;
    const page = await call<{ items: { id: string; parentId: string }[]; nextCursor: string | null; counts: Record<string, unknown> }>(api, `/v1/jobs/${parentId}/tasks?limit=2`, { token: alice.token });
    expect(page.status).toBe(200);
    expect(page.body.items).toHaveLength(2);
    expect(page.body.counts).toMatchObject({ total: 3, queued: 3, succeeded: 0, failurePolicy: { mode: 'fail-fast' } });
    const next = await call<{ items: { id: string }[]; nextCursor: string | null }>(api, `/v1/jobs/${parentId}/tasks?limit=2&cursor=${page.body.nextCursor}`, { token: alice.token });
    expect(next.body).toMatchObject({ nextCursor: null });
    expect(next.body.items).toHaveLength(1);
    const taskIds = [...page.body.items, ...next.body.items].map((item) => item.id);

    const stream = await SseClient.open(api, `/v1/jobs/${parentId}/events`, alice.token);
    const at = Date.now();
    for (const taskId of taskIds) {
      void writer.record({ event: 'start', jobId: taskId, attempt: 1, at, from: 'queued' });
      void writer.record({ event: 'succeed', jobId: taskId, attempt: 1, at, result: { payload: null } });
    }
    await writer.flush();
    await stream.until('the reduce step to be queued', hasEvent(parentId, 'queued'));
    expect(stream.events.filter((event) => event.data.parentId === parentId && event.data.to === 'succeeded')).toHaveLength(3);
    const succeeded = await call<{ items: unknown[] }>(api, `/v1/jobs/${parentId}/tasks?status=succeeded`, { token: alice.token });
    expect(succeeded.body.items).toHaveLength(3);
    expect((await call(api, `/v1/jobs/${parentId}`, { token: alice.token })).body).toMatchObject({ status: 'queued', progress: 100, tasks: { succeeded: 3 } });
    expect((await call(api, `/v1/jobs/${parentId}/tasks?status=nope`, { token: alice.token })).status).toBe(400);
    const plain = await submitEcho(alice.token);
    expect((await call(api, `/v1/jobs/${plain}/tasks`, { token: alice.token })).status).toBe(404);
    const bob = await signUp(api);
    expect((await call(api, `/v1/jobs/${parentId}/tasks`, { token: bob.token })).status).toBe(404);
    stream.close();
  });

  it('a resume far behind reads and sends a bounded part of what it missed per connection; the client catches up over several, each event once', async () => {
    const owner = await signUp(api);
    const jobId = await submitEcho(owner.token);
    // 20,000 missed events of about 250 bytes each: some 5 MB of backlog, far more than one connection sends.
    await api.db.query(
      `INSERT INTO job_events (job_id, from_status, to_status, attempt, detail) SELECT $1, 'queued', 'running', n, repeat('x', 100) FROM generate_series(1, 20000) AS n`,
      [jobId],
    );
    const total = 20_001;
    const received: number[] = [];
    const pagesRead: number[] = [];
    const retryHints: number[] = [];
    while (received.length < total && pagesRead.length < 20) {
      let client: SseClient | undefined;
      const before = received.length;
      const cost = await databaseCost(async () => {
        client = await SseClient.open(api, '/v1/jobs/events', owner.token, received.at(-1) ?? 0);
        await client.until('the stream to end or to send every event', (c) => c.ended || before + c.events.length >= total);
      });
      if (!client) throw new Error('no stream');
      client.close();
      pagesRead.push(cost.queries);
      retryHints.push(client.retryHints.length);
      received.push(...client.events.map((event) => event.id));
    }
    expect(received).toHaveLength(total);
    expect(new Set(received).size).toBe(total);
    expect([...received].sort((a, b) => a - b)).toEqual(received);
    // About a megabyte per connection: five pages of a thousand (and the owner's check), not the 21 of the whole backlog.
    expect(Math.max(...pagesRead)).toBeLessThanOrEqual(6);
    expect(pagesRead.length).toBeGreaterThanOrEqual(5);
    // Every connection but the last ended with a retry hint beside its opening one.
    expect(retryHints.slice(0, -1).every((hints) => hints === 2)).toBe(true);
  }, 60_000);

  it('answers a HEAD of a stream with its headers and ends it, rather than holding a stream that sends nothing', async () => {
    const jobId = await submitEcho(alice.token);
    for (const path of ['/v1/jobs/events', `/v1/jobs/${jobId}/events`]) {
      // Abandoned (and the test fails) only if no answer comes at all within 10 s; a stream lasts EVENT_STREAM_MAX_SECONDS.
      const response = await fetch(`${api.baseUrl}${path}`, { method: 'HEAD', headers: { authorization: `Bearer ${alice.token}` }, signal: AbortSignal.timeout(10_000) });
      expect({ path, status: response.status, type: response.headers.get('content-type') }).toEqual({ path, status: 200, type: 'text/event-stream; charset=utf-8' });
    }
  });

  it('ends the streams of a session that signs out, in this process and in another; a stream of another session of the user goes on', async () => {
    const second = await startApi({
      servers: { databaseUrl: api.env.DATABASE_URL, redisUrl: api.env.REDIS_URL, redisPrefix: api.env.QUEUE_PREFIX },
      env: { KEY_ENCRYPTION_SECRET: api.env.KEY_ENCRYPTION_SECRET, STREAM_RATE_LIMIT_PER_MINUTE: '100000' },
    });
    try {
      const owner = await signUp(api);
      const otherSession = await login(api, owner.email, PASSWORD);
      const here = await SseClient.open(api, '/v1/jobs/events', owner.token);
      const there = await SseClient.open(second, '/v1/jobs/events', owner.token);
      const kept = await SseClient.open(api, '/v1/jobs/events', otherSession.accessToken);
      expect([here.status, there.status, kept.status]).toEqual([200, 200, 200]);

      expect((await call(api, '/v1/auth/logout', { method: 'POST', token: owner.token })).status).toBe(204);
      await here.until('the signed-out stream here to end', (client) => client.ended);
      await there.until('the signed-out stream in the other process to end', (client) => client.ended);

      const jobId = await submitEcho(otherSession.accessToken);
      await kept.until('the other session to see the job', hasEvent(jobId, 'queued'));
      expect([...here.events, ...there.events]).toEqual([]);
      kept.close();
    } finally {
      await second.close();
    }
  });
});

describe('job event stream limits', () => {
  let api: ApiFixture;

  beforeAll(async () => {
    api = await startApi({ env: { EVENT_STREAMS_PER_USER: '2', EVENT_STREAMS_MAX: '3', EVENT_STREAM_MAX_SECONDS: '1' } });
  });
  afterAll(async () => {
    await api.close();
  });

  it('caps streams per user (429) and per process (503), with problem+json and Retry-After; a stream ends at its maximum duration with a retry hint', async () => {
    const alice = await signUp(api);
    const bob = await signUp(api);
    const open = [await SseClient.open(api, '/v1/jobs/events', alice.token), await SseClient.open(api, '/v1/jobs/events', alice.token)];
    expect(open.map((client) => client.status)).toEqual([200, 200]);
    const overUser = await call(api, '/v1/jobs/events', { token: alice.token });
    expect(overUser.status).toBe(429);
    expect(overUser.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(overUser.headers.get('retry-after')).toBe('5');
    const third = await SseClient.open(api, '/v1/jobs/events', bob.token);
    expect(third.status).toBe(200);
    const overProcess = await call(api, '/v1/jobs/events', { token: bob.token });
    expect(overProcess.status).toBe(503);
    expect(overProcess.body).toMatchObject({ status: 503, detail: 'This server holds its maximum of 3 event streams.' });

    await Promise.all([...open, third].map((client) => client.until('the stream to reach its maximum duration', (c) => c.ended)));
    for (const client of [...open, third]) expect(client.retryHints.length).toBeGreaterThanOrEqual(2);
    // Their slots are free again.
    const again = await SseClient.open(api, '/v1/jobs/events', alice.token);
    expect(again.status).toBe(200);
    again.close();
  });

  it('shutdown drains: open streams end with a retry hint, and new ones are refused while the process drains', async () => {
    const alice = await signUp(api);
    const stream = await SseClient.open(api, '/v1/jobs/events', alice.token);
    expect(stream.status).toBe(200);
    await stream.until('the opening retry hint', (client) => client.retryHints.length === 1);
    api.lifecycle.draining = true;
    api.core.events.drain();
    await stream.until('the stream to end', (client) => client.ended);
    expect(stream.retryHints).toEqual([2_000, 2_000]);
    expect((await call(api, '/v1/jobs/events', { token: alice.token })).status).toBe(503);
    api.lifecycle.draining = false;
  });
});

describe('job event streams per client address', () => {
  let api: ApiFixture;

  beforeAll(async () => {
    // X-Forwarded-For from the test's loopback peer names the client address, as the ALB's does in the cloud.
    api = await startApi({ env: { TRUST_PROXY: '127.0.0.1,::1', EVENT_STREAMS_PER_USER: '2', EVENT_STREAMS_PER_ADDRESS: '3', EVENT_STREAMS_MAX: '10' } });
  });
  afterAll(async () => {
    await api.close();
  });

  it('caps the streams of one address whatever accounts it signs in with (429, problem+json, Retry-After), leaving the rest of the process to other addresses', async () => {
    const from = (address: string) => ({ 'x-forwarded-for': address });
    const accounts = [await signUp(api), await signUp(api), await signUp(api)];
    const [first, second, third] = accounts.map((account) => account.token) as [string, string, string];
    const held = [
      await SseClient.open(api, '/v1/jobs/events', first, undefined, from('198.51.100.7')),
      await SseClient.open(api, '/v1/jobs/events', first, undefined, from('198.51.100.7')),
      await SseClient.open(api, '/v1/jobs/events', second, undefined, from('198.51.100.7')),
    ];
    expect(held.map((client) => client.status)).toEqual([200, 200, 200]);

    const refused = await call(api, '/v1/jobs/events', { token: third, headers: from('198.51.100.7') });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(refused.body).toMatchObject({ status: 429, detail: expect.stringContaining('from one client address') });

    const elsewhere = await SseClient.open(api, '/v1/jobs/events', third, undefined, from('203.0.113.9'));
    expect(elsewhere.status).toBe(200);
    held[0]?.close();
    await held[0]?.until('the stream to close', (client) => client.ended);
    // A slot of that address is free again once one of its streams ends (the server sees the close a moment later).
    let again = await SseClient.open(api, '/v1/jobs/events', third, undefined, from('198.51.100.7'));
    for (let tries = 0; again.status === 429 && tries < 50; tries += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      again = await SseClient.open(api, '/v1/jobs/events', third, undefined, from('198.51.100.7'));
    }
    expect(again.status).toBe(200);
    again.close();
    for (const client of [...held, elsewhere]) client.close();
  });
});

describe('job event streams whose client leaves while they open', () => {
  let api: ApiFixture;

  beforeAll(async () => {
    api = await startApi({ env: { EVENT_STREAMS_PER_USER: '2' } });
  });
  afterAll(async () => {
    await api.close();
  });

  /**
   * Opens `path` on a socket of its own and leaves once the request is inside `step` (a call
   * the stream's request makes, wrapped here to wait): the server sees the client go while the
   * stream is still opening.
   */
  async function leaveDuring<T extends object, K extends keyof T>(owner: T, step: K, path: string, token: string): Promise<void> {
    const original = owner[step] as (...args: unknown[]) => Promise<unknown>;
    let reached: () => void = () => undefined;
    const inside = new Promise<void>((resolve) => (reached = resolve));
    let leave: () => void = () => undefined;
    const left = new Promise<void>((resolve) => (leave = resolve));
    owner[step] = (async (...args: unknown[]) => {
      reached();
      await left;
      return original.apply(owner, args);
    }) as T[K];
    try {
      const { hostname, port } = new URL(api.baseUrl);
      const socket = connect(Number(port), hostname);
      socket.on('error', () => undefined);
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${token}\r\n\r\n`);
      await inside;
      await new Promise<void>((resolve) => socket.destroy().once('close', () => resolve()));
      // The server sees the socket go on one of its next turns.
      await new Promise((resolve) => setTimeout(resolve, 200));
      leave();
    } finally {
      owner[step] = original as T[K];
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  it('gives back the place of a stream whose client left before it began, rather than hold it until EVENT_STREAM_MAX_SECONDS', async () => {
    const alice = await signUp(api);
    const job = await call<{ id: string }>(api, '/v1/jobs', { token: alice.token, json: { type: 'sleep', input: { ms: 60_000 } } });
    // Gone while its token was checked, before the stream's code ran at all.
    await leaveDuring(api.deps.auth, 'verifyAccessToken', '/v1/jobs/events', alice.token);
    // Gone while a job's stream read its job, its first step.
    await leaveDuring(api.deps.jobs, 'get', `/v1/jobs/${job.body.id}/events`, alice.token);
    const streams = [await SseClient.open(api, '/v1/jobs/events', alice.token), await SseClient.open(api, '/v1/jobs/events', alice.token)];
    expect(streams.map((client) => client.status)).toEqual([200, 200]);
    for (const client of streams) client.close();
  });
});
