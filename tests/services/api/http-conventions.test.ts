import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { call, countRows, makeAdmin, signUp, startApi, type ApiFixture } from './fixture';
import { login, refresh, refreshCookie, refreshCookieHeader } from './identity-helpers';

describe('HTTP conventions', () => {
  let api: ApiFixture;
  let token: string;

  beforeAll(async () => {
    api = await startApi({ env: { JSON_BODY_LIMIT_BYTES: '2048' } });
    ({ token } = await signUp(api));
  });

  afterAll(async () => {
    await api.close();
  });

  it('echoes a well-formed X-Request-Id and logs under it', async () => {
    const response = await call(api, '/v1/auth/login', { json: { email: 'nobody@example.com', password: 'irrelevant password' }, headers: { 'x-request-id': 'trace-abc.123_X' } });
    expect(response.headers.get('x-request-id')).toBe('trace-abc.123_X');
    expect(response.body.requestId).toBe('trace-abc.123_X');
    await call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: 1 } }, headers: { 'x-request-id': 'submit-trace-1' } });
    const { rows } = await api.db.query<{ request_id: string }>("SELECT request_id FROM jobs WHERE request_id = 'submit-trace-1'");
    expect(rows).toHaveLength(1);
  });

  it('logs what the routes and the core services do for a request under that request\'s id', async () => {
    const { email, userId } = await signUp(api);
    const wrong = await call(api, '/v1/auth/login', { json: { email, password: 'not the password at all' }, headers: { 'x-request-id': 'login-trace-1' } });
    expect(wrong.status).toBe(401);
    // The route's own security event, then the core auth service's: a replayed refresh token.
    const first = await login(api, email, 'correct horse battery staple');
    const second = await refresh(api, first.refresh);
    // Its successor used: presenting the first token again is reuse however soon (a lost answer alone may be exchanged again).
    expect((await refresh(api, refreshCookie(second.headers)?.value ?? '')).status).toBe(200);
    const replayed = await call(api, '/v1/auth/refresh', { method: 'POST', headers: { cookie: refreshCookieHeader(first.refresh), 'x-request-id': 'replay-trace-1' } });
    expect(replayed.status).toBe(401);
    // An operator's action, logged by the core admin service.
    const admin = await makeAdmin(api, (await signUp(api)).userId);
    expect((await call(api, '/v1/admin/queues/pause', { method: 'POST', token: admin, headers: { 'x-request-id': 'pause-trace-1' } })).status).toBe(204);
    expect((await call(api, '/v1/admin/queues/resume', { method: 'POST', token: admin, headers: { 'x-request-id': 'resume-trace-1' } })).status).toBe(204);

    expect(api.logLines).toContainEqual(expect.objectContaining({ kind: 'login_failed', email, requestId: 'login-trace-1' }));
    expect(api.logLines).toContainEqual(expect.objectContaining({ kind: 'refresh_token_reuse', userId, requestId: 'replay-trace-1' }));
    expect(api.logLines).toContainEqual(expect.objectContaining({ msg: 'queue paused', requestId: 'pause-trace-1' }));
    expect(api.logLines).toContainEqual(expect.objectContaining({ msg: 'queue resumed', requestId: 'resume-trace-1' }));
  });

  it('generates a UUID request id when none or a malformed one is sent', async () => {
    const none = await call(api, '/healthz');
    expect(none.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const malformed = await call(api, '/healthz', { headers: { 'x-request-id': 'bad id\twith spaces' } });
    expect(malformed.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const tooLong = await call(api, '/healthz', { headers: { 'x-request-id': 'a'.repeat(129) } });
    expect(tooLong.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers unknown routes with a 404 problem', async () => {
    const response = await call(api, '/v1/nothing-here', { headers: { 'x-request-id': 'nf-1' } });
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(response.body).toEqual({ type: 'about:blank', title: 'Not Found', status: 404, detail: expect.any(String), instance: '/v1/nothing-here', requestId: 'nf-1' });
  });

  it('answers a method a declared path does not take with a 405 problem and Allow, not a 404', async () => {
    for (const [method, path, allow] of [
      ['PUT', '/v1/jobs', 'GET, HEAD, POST'],
      ['PATCH', '/v1/jobs/00000000-0000-4000-8000-000000000000', 'DELETE, GET, HEAD'],
      ['GET', '/v1/auth/login', 'POST'],
      ['POST', '/v1/jobs/events', 'GET, HEAD'],
    ] as const) {
      const response = await call(api, path, { method, headers: { 'x-request-id': 'na-1' } });
      expect({ method, path, status: response.status, allow: response.headers.get('allow') }).toEqual({ method, path, status: 405, allow });
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(response.body).toEqual({ type: 'about:blank', title: 'Method Not Allowed', status: 405, detail: expect.any(String), instance: path, requestId: 'na-1' });
    }
    // OPTIONS stays Express's own answer, listing the same methods.
    const options = await call(api, '/v1/jobs', { method: 'OPTIONS' });
    expect({ status: options.status, allow: options.headers.get('allow') }).toEqual({ status: 200, allow: 'GET, HEAD, POST' });
  });

  it('answers requests Node refuses before the app sees them (headers too large, not HTTP) with a problem too', async () => {
    const tooLarge = await call(api, '/v1/auth/me', { token, headers: { 'x-padding': 'a'.repeat(20_000) } });
    expect(tooLarge.status).toBe(431);
    expect(tooLarge.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(tooLarge.body).toEqual({ type: 'about:blank', title: 'Request Header Fields Too Large', status: 431, detail: expect.stringMatching(/headers/), requestId: expect.any(String) });
    expect(tooLarge.headers.get('x-request-id')).toBe(tooLarge.body.requestId);

    const { port } = new URL(api.baseUrl);
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.end('GET /v1/jobs HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n'));
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(raw).toMatch(/\r\ncontent-type: application\/problem\+json;/i);
    expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))).toMatchObject({ status: 400, title: 'Bad Request' });
  });

  it('refuses bodies that are not JSON with 415, malformed JSON with 400 and big ones with 413, storing nothing', async () => {
    const before = await countRows(api, 'jobs');
    const form = await call(api, '/v1/jobs', { token, body: 'type=echo', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form.status).toBe(415);
    expect(form.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const broken = await call(api, '/v1/jobs', { token, body: '{"type": "echo",', headers: { 'content-type': 'application/json' } });
    expect(broken.status).toBe(400);
    expect(broken.body.detail).toBe('the request body is not valid JSON');
    const big = await call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: 'x'.repeat(4096) } } });
    expect(big.status).toBe(413);
    expect(big.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await countRows(api, 'jobs')).toBe(before);
  });

  it('refuses a JSON body that is not what its Content-Encoding says with 400, not 500', async () => {
    const before = await countRows(api, 'jobs');
    for (const encoding of ['gzip', 'deflate', 'br']) {
      const response = await call(api, '/v1/jobs', { token, body: '{"type":"echo","input":{}}', headers: { 'content-type': 'application/json', 'content-encoding': encoding } });
      expect({ encoding, status: response.status }).toEqual({ encoding, status: 400 });
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(response.body.detail).toBe(`the request body is not valid ${encoding} data`);
    }
    const compressed = await call(api, '/v1/jobs', { token, body: gzipSync('{"type":"echo","input":{}}'), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } });
    expect(compressed.status).toBe(202);
    expect(await countRows(api, 'jobs')).toBe(before + 1);
    expect(api.logLines.filter((line) => line.msg === 'unhandled error')).toEqual([]);
  });

  it('has no cache keep what an authenticated request is answered, its 401 included', async () => {
    for (const response of [await call(api, '/v1/jobs', { token }), await call(api, '/v1/auth/me', { token }), await call(api, '/v1/jobs')]) {
      expect(response.headers.get('cache-control')).toBe('no-store');
    }
  });

  it('sets helmet\'s security headers', async () => {
    const response = await call(api, '/healthz');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('x-powered-by')).toBeNull();
    expect(response.headers.get('content-security-policy')).toContain("default-src 'self'");
  });

  it('logs an unexpected error with the request id and answers 500 without details', async () => {
    const failing = jest.spyOn(api.core.jobs, 'get').mockRejectedValueOnce(new Error('secret internal detail'));
    try {
      const response = await call(api, '/v1/jobs/00000000-0000-4000-8000-000000000000?access_token=query-secret-1', { token, headers: { 'x-request-id': 'boom-1' } });
      expect(response.status).toBe(500);
      expect(response.text).not.toContain('secret internal detail');
      expect(response.body.requestId).toBe('boom-1');
      expect(api.logLines).toContainEqual(expect.objectContaining({ level: 'error', requestId: 'boom-1', msg: 'unhandled error', path: '/v1/jobs/00000000-0000-4000-8000-000000000000' }));
      expect(JSON.stringify(api.logLines)).not.toContain('query-secret-1');
    } finally {
      failing.mockRestore();
    }
  });

  it('records request durations by route template, not raw path', async () => {
    await call(api, '/v1/jobs/00000000-0000-4000-8000-000000000001', { token });
    const metrics = await call(api, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/http_request_duration_seconds_count\{[^}]*route="\/v1\/jobs\/:id"[^}]*status="404"/);
    expect(metrics.text).not.toContain('00000000-0000-4000-8000-000000000001');
  });
});
