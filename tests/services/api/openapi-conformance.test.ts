import { call, signUp, startApi, type ApiFixture } from './fixture';
import { SseClient } from './sse-client';

/**
 * What the server sends, held against what the document it serves says: a client
 * generated from /openapi.json (openapi-typescript, a response validator) must find each
 * answer's status, media type and contract headers declared for its operation.
 */

interface MediaTypeObject {
  schema?: Record<string, unknown>;
}
interface ResponseObject {
  headers?: Record<string, unknown>;
  content?: Record<string, MediaTypeObject>;
}
interface OpenApiDocument {
  paths: Record<string, Record<string, { security?: Record<string, string[]>[]; requestBody?: { content: Record<string, MediaTypeObject> }; responses: Record<string, ResponseObject> }>>;
  components: { securitySchemes: Record<string, unknown>; schemas: Record<string, { type?: unknown; properties?: Record<string, unknown>; required?: string[]; anyOf?: unknown[] }> };
}

/** Headers a client acts on (follows, waits by, stores, names a saved file by): each one sent must be declared. */
const CONTRACT_HEADERS = ['location', 'retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset', 'set-cookie', 'www-authenticate', 'content-disposition'];

/** Whether a declared media type or range (`text/*`, `*\/*`) covers the Content-Type sent. */
function covers(declared: string, sent: string): boolean {
  const [type, subtype] = declared.split('/');
  const [sentType, sentSubtype] = sent.split(';')[0]!.trim().toLowerCase().split('/');
  return (type === '*' || type === sentType) && (subtype === '*' || subtype === sentSubtype);
}

/** Where an answer departs from its operation's declared response; empty when the document describes it. */
function departures(document: OpenApiDocument, method: string, template: string, response: { status: number; headers: Headers }): string[] {
  const declared = document.paths[template]?.[method]?.responses[String(response.status)];
  if (!declared) return [`${method.toUpperCase()} ${template}: status ${response.status} is not declared`];
  const found: string[] = [];
  const sentType = response.headers.get('content-type');
  const mediaTypes = Object.keys(declared.content ?? {});
  if (sentType && !mediaTypes.some((media) => covers(media, sentType))) {
    found.push(`${method.toUpperCase()} ${template} ${response.status}: Content-Type ${sentType} is not among ${mediaTypes.join(', ') || 'none'}`);
  }
  const headers = Object.keys(declared.headers ?? {}).map((name) => name.toLowerCase());
  for (const name of CONTRACT_HEADERS) {
    if (response.headers.has(name) && !headers.includes(name)) found.push(`${method.toUpperCase()} ${template} ${response.status}: header ${name} is sent, not declared`);
  }
  return found;
}

describe('OpenAPI document against what the server sends', () => {
  let api: ApiFixture;
  let document: OpenApiDocument;

  beforeAll(async () => {
    // Low caps, so a test reaches a 429 in a few requests.
    api = await startApi({ env: { EVENT_STREAMS_PER_USER: '1' } });
    document = (await call<OpenApiDocument>(api, '/openapi.json')).body;
  });

  afterAll(async () => {
    await api.close();
  });

  it('declares the media type a download is sent with: the file\'s own, as uploaded', async () => {
    const user = await signUp(api);
    // The raw upload's own type is a declared request media type too.
    expect(Object.keys(document.paths['/v1/files']?.post?.requestBody?.content ?? {}).some((media) => covers(media, 'text/csv'))).toBe(true);
    const upload = await call<{ id: string }>(api, '/v1/files', { token: user.token, body: 'a,b\n1,2\n', headers: { 'content-type': 'text/csv', 'x-file-name': 'data.csv' } });
    expect(upload.status).toBe(201);
    expect(departures(document, 'post', '/v1/files', upload)).toEqual([]);
    const download = await call(api, `/v1/files/${upload.body.id}/content`, { token: user.token });
    expect(download.headers.get('content-type')).toBe('text/csv');
    expect(departures(document, 'get', '/v1/files/{id}/content', download)).toEqual([]);
  });

  it('declares the RateLimit-* headers a 429 is sent with, on every operation that may answer 429', async () => {
    const user = await signUp(api);
    // A cap on things held at once (event streams): no window, so no RateLimit-Limit.
    const held = await SseClient.open(api, '/v1/jobs/events', user.token);
    try {
      const refused = await call(api, '/v1/jobs/events', { token: user.token });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('ratelimit-remaining')).toBe('0');
      expect(departures(document, 'get', '/v1/jobs/events', refused)).toEqual([]);
    } finally {
      held.close();
    }
    // A limiter's window (the account lockout): RateLimit-Limit too.
    for (let attempt = 0; attempt <= api.env.LOGIN_FAILURES_BEFORE_LOCKOUT; attempt += 1) await call(api, '/v1/auth/login', { json: { email: user.email, password: 'not the password at all' } });
    const locked = await call(api, '/v1/auth/login', { json: { email: user.email, password: 'not the password at all' } });
    expect(locked.status).toBe(429);
    expect(locked.headers.get('ratelimit-limit')).toBe(String(api.env.LOGIN_FAILURES_BEFORE_LOCKOUT));
    expect(departures(document, 'post', '/v1/auth/login', locked)).toEqual([]);
    // Whatever limits an operation, its 429 says the same headers.
    for (const [template, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const tooMany = operation.responses['429'];
        if (tooMany) expect({ operation: `${method} ${template}`, headers: Object.keys(tooMany.headers ?? {}).sort() }).toEqual({ operation: `${method} ${template}`, headers: ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'Retry-After', 'X-Request-Id'] });
      }
    }
  });

  it('declares the Set-Cookie that clears the refresh cookie: logout, and a refresh refused', async () => {
    const user = await signUp(api);
    const loggedOut = await call(api, '/v1/auth/logout', { method: 'POST', token: user.token });
    expect(loggedOut.status).toBe(204);
    expect(loggedOut.headers.get('set-cookie')).toMatch(/^__Host-pk_refresh=;/);
    expect(departures(document, 'post', '/v1/auth/logout', loggedOut)).toEqual([]);
    const refused = await call(api, '/v1/auth/refresh', { method: 'POST', headers: { cookie: `__Host-pk_refresh=${'A'.repeat(43)}` } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('set-cookie')).toMatch(/^__Host-pk_refresh=;/);
    expect(departures(document, 'post', '/v1/auth/refresh', refused)).toEqual([]);
  });

  it('declares the WWW-Authenticate challenge of a 401 for a missing or bad bearer token', async () => {
    const missing = await call(api, '/v1/jobs');
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    expect(departures(document, 'get', '/v1/jobs', missing)).toEqual([]);
    const invalid = await call(api, '/v1/auth/me', { token: 'not-a-token' });
    expect(invalid.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    expect(departures(document, 'get', '/v1/auth/me', invalid)).toEqual([]);
  });

  it('defines the JobEvent its event streams name, as the events\' data are sent', async () => {
    const user = await signUp(api);
    const submitted = await call<{ id: string }>(api, '/v1/jobs', { token: user.token, json: { type: 'echo', input: {} } });
    expect(submitted.status).toBe(202);
    const stream = await SseClient.open(api, `/v1/jobs/${submitted.body.id}/events`, user.token);
    try {
      await stream.until('the queued event', (client) => client.events.length > 0);
    } finally {
      stream.close();
    }
    const schema = document.components.schemas.JobEvent;
    expect(schema).toBeDefined();
    const sent = Object.keys(stream.events[0]!.data).sort();
    expect(Object.keys(schema?.properties ?? {}).sort()).toEqual(sent);
    expect([...(schema?.required ?? [])].sort()).toEqual(sent);
    // The streams' descriptions point at it.
    const described = JSON.stringify(document.paths['/v1/jobs/{id}/events']?.get?.responses['200']);
    expect(described).toContain('#/components/schemas/JobEvent');
  });

  it('declares 503 only where an answer can be 503: not on the operations that consult no dependency', () => {
    // Liveness, the job-type catalog and the metrics answer from the process alone (needsDatabase: false).
    for (const [template, method] of [['/healthz', 'get'], ['/v1/job-types', 'get'], ['/metrics', 'get']] as const) {
      expect({ operation: `${method} ${template}`, statuses: Object.keys(document.paths[template]?.[method]?.responses ?? {}) }).toEqual({
        operation: `${method} ${template}`,
        statuses: expect.not.arrayContaining(['503']),
      });
    }
    // Readiness answers 503 with Retry-After while PostgreSQL is away.
    expect(Object.keys(document.paths['/readyz']?.get?.responses['503']?.headers ?? {})).toContain('Retry-After');
  });

  it('says null only where the server may send null: a task page\'s counts never are, a job\'s tasks may be', async () => {
    const user = await signUp(api);
    const batch = await call<{ id: string; tasks: unknown }>(api, '/v1/jobs', { token: user.token, json: { type: 'echo.batch', input: { count: 2 } } });
    expect(batch.status).toBe(202);
    const page = await call<{ counts: unknown }>(api, `/v1/jobs/${batch.body.id}/tasks`, { token: user.token });
    expect(page.body.counts).not.toBeNull();
    const echo = await call<{ tasks: unknown }>(api, '/v1/jobs', { token: user.token, json: { type: 'echo', input: {} } });
    expect(echo.body.tasks).toBeNull();
    // TaskPage.counts points at TaskCounts, so TaskCounts itself must not admit null (a generated client would type it `| null`) …
    expect(document.components.schemas.TaskPage?.properties?.counts).toEqual({ $ref: '#/components/schemas/TaskCounts' });
    expect(document.components.schemas.TaskCounts?.type).toBe('object');
    // … while a job's `tasks` says null itself.
    expect(document.components.schemas.Job?.properties?.tasks).toEqual({ anyOf: [{ $ref: '#/components/schemas/TaskCounts' }, { type: 'null' }] });
  });

  it('declares the refresh cookie as the credential refresh needs (and logout takes), not as no credential', async () => {
    const refused = await call(api, '/v1/auth/refresh', { method: 'POST' });
    expect(refused.status).toBe(401);
    expect(document.components.securitySchemes.refreshCookie).toEqual({ type: 'apiKey', in: 'cookie', name: '__Host-pk_refresh', description: expect.any(String) });
    expect(document.paths['/v1/auth/refresh']?.post?.security).toEqual([{ refreshCookie: [] }]);
    // Logout takes the bearer token, the cookie, or neither (always 204).
    expect(document.paths['/v1/auth/logout']?.post?.security).toEqual([{ bearerAuth: [] }, { refreshCookie: [] }, {}]);
    expect((await call(api, '/v1/auth/logout', { method: 'POST' })).status).toBe(204);
  });

  it('requires in Job every field a whole job is always sent with, its input and result included', async () => {
    const user = await signUp(api);
    const submitted = await call<Record<string, unknown>>(api, '/v1/jobs', { token: user.token, json: { type: 'echo', input: { payload: 1 } } });
    const read = await call<Record<string, unknown>>(api, `/v1/jobs/${String(submitted.body.id)}`, { token: user.token });
    const required = document.components.schemas.Job?.required ?? [];
    for (const body of [submitted.body, read.body]) expect(Object.keys(body).filter((key) => !required.includes(key))).toEqual([]);
    expect(Object.keys(read.body)).toEqual(expect.arrayContaining(['input', 'result']));
  });

  it('declares 429 only on the operations a limit guards', () => {
    const limited = Object.entries(document.paths).flatMap(([template, operations]) =>
      Object.entries(operations)
        .filter(([, operation]) => operation.responses['429'])
        .map(([method]) => `${method.toUpperCase()} ${template}`),
    );
    // Per-user limits (submits, job data read back, uploads, streams), caps on what one user holds at once
    // (streams, transfers, job writes over a fan-out's tasks: cancel, retry, delete), and the per-address and
    // per-account limits of the auth routes. Nothing limits the task list, file metadata, /me or the admin routes.
    expect(limited.sort()).toEqual(
      [
        'POST /v1/jobs',
        'POST /v1/jobs/{id}/cancel',
        'POST /v1/jobs/{id}/retry',
        'DELETE /v1/jobs/{id}',
        'GET /v1/jobs',
        'GET /v1/jobs/{id}',
        'GET /v1/jobs/events',
        'GET /v1/jobs/{id}/events',
        'POST /v1/files',
        'GET /v1/files/{id}/content',
        'POST /v1/auth/register',
        'POST /v1/auth/login',
        'POST /v1/auth/refresh',
        'POST /v1/auth/password-reset',
        'POST /v1/auth/password-reset/confirm',
      ].sort(),
    );
  });
});
