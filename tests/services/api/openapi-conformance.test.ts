import { z } from 'zod';
import { call, makeAdmin, signUp, startApi, type ApiFixture, type CallOptions, type CallResult } from './fixture';
import { SseClient } from './sse-client';
import { startWorkerFor } from './worker-process';
import { publicJobTypes, schemaName } from '../../../services/contract';
import { waitFor } from '../engine/fixture';

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

/**
 * A schema of the document as a response validator reads it: each `$ref` replaced by what it
 * names (the document's schemas do not recurse), and each object closed, since a field the
 * schema does not name is one a generated client has no type for.
 */
function closedSchema(document: OpenApiDocument, node: unknown): unknown {
  if (Array.isArray(node)) return node.map((item) => closedSchema(document, item));
  if (!node || typeof node !== 'object') return node;
  const { $ref } = node as { $ref?: unknown };
  if (typeof $ref === 'string') return closedSchema(document, document.components.schemas[$ref.slice('#/components/schemas/'.length)]);
  const schema = Object.fromEntries(Object.entries(node).map(([key, value]) => [key, closedSchema(document, value)]));
  if ('properties' in schema && !('additionalProperties' in schema)) schema.additionalProperties = false;
  return schema;
}

/** Where a JSON body departs from the schema declared for it (through zod's reading of JSON Schema, apart from the zod schemas the document was made from). */
function bodyDepartures(document: OpenApiDocument, schema: Record<string, unknown>, body: unknown): string[] {
  const result = z.fromJSONSchema(closedSchema(document, schema) as Parameters<typeof z.fromJSONSchema>[0]).safeParse(body);
  return result.success ? [] : result.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}${'keys' in issue ? ` ${JSON.stringify(issue.keys)}` : ''}`);
}

/** Whether a declared media type or range (`text/*`, `*\/*`) covers the Content-Type sent. */
function covers(declared: string, sent: string): boolean {
  const [type, subtype] = declared.split('/');
  const [sentType, sentSubtype] = sent.split(';')[0]!.trim().toLowerCase().split('/');
  return (type === '*' || type === sentType) && (subtype === '*' || subtype === sentSubtype);
}

/** Where an answer departs from its operation's declared response; empty when the document describes it. */
function departures(document: OpenApiDocument, method: string, template: string, response: { status: number; headers: Headers; text?: string }): string[] {
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
  const schema = sentType && /json/.test(sentType) && response.text ? Object.entries(declared.content ?? {}).find(([media]) => covers(media, sentType))?.[1].schema : undefined;
  if (schema) for (const departure of bodyDepartures(document, schema, JSON.parse(response.text!))) found.push(`${method.toUpperCase()} ${template} ${response.status}: ${departure}`);
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

  it('declares the length of a new password the server takes: a client that validates against the document is refused nothing it let through', async () => {
    // JSON Schema counts a string's length in characters (code points), as the server does.
    for (const body of ['RegisterBody', 'PasswordResetConfirm']) {
      const password = (document.components.schemas[body]?.properties?.password ?? {}) as { minLength?: number; maxLength?: number };
      expect({ body, minLength: password.minLength, maxLength: password.maxLength }).toEqual({ body, minLength: expect.any(Number), maxLength: expect.any(Number) });
      if (body !== 'RegisterBody') continue;
      const answers: Record<string, number> = {};
      const register = async (label: string, value: string) => {
        answers[label] = (await call(api, '/v1/auth/register', { json: { email: `length-${label}-${Date.now()}@example.com`, password: value } })).status;
      };
      const shortest = password.minLength!;
      const longest = password.maxLength!;
      await register('shortest', 'q7'.repeat(shortest).slice(0, shortest));
      await register('one shorter', 'q7'.repeat(shortest).slice(0, shortest - 1));
      // Characters outside the BMP: two UTF-16 units each, one character.
      await register('longest', '\u{1F600}'.repeat(longest));
      await register('one longer', '\u{1F600}'.repeat(longest + 1));
      expect(answers).toEqual({ shortest: 202, 'one shorter': 400, longest: 202, 'one longer': 400 });
    }
  });

  it('declares the addresses the server takes as an email: what its pattern admits is registered, what it refuses is refused', async () => {
    const email = (document.components.schemas.RegisterBody?.properties?.email ?? {}) as { pattern?: string };
    expect(email.pattern).toEqual(expect.any(String));
    const admits = new RegExp(email.pattern!);
    const stamp = Date.now();
    // The JSON Schema format "email" alone admits all of these (RFC 5321 lets a domain be one label).
    const addresses = [`ada.${stamp}@example.com`, `ada+${stamp}@mail.example.org`, `no-dot-${stamp}@localhost`, `short-tld-${stamp}@example.c`, `dots..${stamp}@example.com`, `.lead-${stamp}@example.com`];
    for (const address of addresses) {
      const answer = await call(api, '/v1/auth/register', { json: { email: address, password: 'correct horse battery staple' } });
      expect({ address, status: answer.status }).toEqual({ address, status: admits.test(address) ? 202 : 400 });
    }
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
    // … while a job's `tasks` says null itself, in the variant of every type.
    for (const definition of publicJobTypes()) {
      const variant = `${schemaName(definition.type)}Job`;
      expect({ variant, tasks: document.components.schemas[variant]?.properties?.tasks }).toEqual({ variant, tasks: { anyOf: [{ $ref: '#/components/schemas/TaskCounts' }, { type: 'null' }] } });
    }
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

  it('requires in each type\'s Job every field a whole job is always sent with, its input and result included', async () => {
    const user = await signUp(api);
    const submitted = await call<Record<string, unknown>>(api, '/v1/jobs', { token: user.token, json: { type: 'echo', input: { payload: 1 } } });
    const read = await call<Record<string, unknown>>(api, `/v1/jobs/${String(submitted.body.id)}`, { token: user.token });
    const required = document.components.schemas.EchoJob?.required ?? [];
    for (const body of [submitted.body, read.body]) expect(Object.keys(body).filter((key) => !required.includes(key))).toEqual([]);
    expect(Object.keys(read.body)).toEqual(expect.arrayContaining(['input', 'result']));
  });

  it('types each job\'s input and result by its type: a job of every public type, run to success by a worker, is what its variant of Job declares', async () => {
    const user = await signUp(api);
    const token = user.token;
    const upload = async (body: string, type: string) => (await call<{ id: string }>(api, '/v1/files', { token, body, headers: { 'content-type': type } })).body.id;
    const text = await upload('the quick brown fox jumps over the lazy dog the end\n', 'text/plain');
    const csv = await upload('name,count\nfox,3\ndog,4\n', 'text/csv');
    const inputs: Record<string, unknown> = {
      echo: { payload: { answer: 42, list: [1, 'two'] } },
      sleep: { ms: 1 },
      'file.checksum': { fileId: text },
      'file.compress': { fileId: text, format: 'brotli' },
      'text.stats': { fileId: text },
      'csv.summary': { fileId: csv },
      'files.checksum': { fileIds: [text, csv] },
      'echo.batch': { count: 2, payload: 'x' },
    };
    expect(Object.keys(inputs).sort()).toEqual(publicJobTypes().map((definition) => definition.type).sort());
    const ids: Record<string, string> = {};
    for (const [type, input] of Object.entries(inputs)) {
      const submitted = await call<{ id: string }>(api, '/v1/jobs', { token, json: { type, input } });
      expect({ type, status: submitted.status }).toEqual({ type, status: 202 });
      ids[type] = submitted.body.id;
    }
    const worker = await startWorkerFor(api);
    const found: string[] = [];
    try {
      for (const [type, id] of Object.entries(ids)) {
        const read = await waitFor(`the ${type} job to succeed`, async () => {
          const answer = await call<{ status: string; result: unknown }>(api, `/v1/jobs/${id}`, { token });
          return answer.body.status === 'succeeded' ? answer : undefined;
        });
        expect({ type, result: read.body.result }).toEqual({ type, result: expect.any(Object) });
        found.push(...departures(document, 'get', '/v1/jobs/{id}', read));
      }
      const page = await call(api, '/v1/jobs?limit=100&include=input,result', { token });
      // The top-level jobs: a fan-out job's tasks are listed under it.
      expect((page.body as { items: unknown[] }).items).toHaveLength(Object.keys(ids).length);
      found.push(...departures(document, 'get', '/v1/jobs', page));
    } finally {
      await worker.stop();
    }
    expect(found).toEqual([]);
    // The variants tell the types apart: an echo job's answer with a sleep's result is not a Job.
    const echo = await call(api, `/v1/jobs/${ids.echo!}`, { token });
    const tampered = { ...echo, text: JSON.stringify({ ...(echo.body as object), result: { sleptMs: 1 } }) };
    expect(departures(document, 'get', '/v1/jobs/{id}', tampered)).not.toEqual([]);
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
  it('declares the cursor each page takes as the server reads it: an empty one is refused (400), so the document admits none', async () => {
    const user = await signUp(api);
    const admin = await makeAdmin(api, (await signUp(api)).userId);
    const batch = await call<{ id: string }>(api, '/v1/jobs', { token: user.token, json: { type: 'echo.batch', input: { count: 1 } } });
    const paged: [string, string, string][] = [
      ['/v1/jobs', '/v1/jobs', user.token],
      ['/v1/jobs/{id}/tasks', `/v1/jobs/${batch.body.id}/tasks`, user.token],
      ['/v1/admin/dlq', '/v1/admin/dlq', admin],
    ];
    for (const [template, pathname, token] of paged) {
      expect({ template, status: (await call(api, `${pathname}?cursor=`, { token })).status }).toEqual({ template, status: 400 });
      const parameters = (document.paths[template]?.get as { parameters?: { name: string; in: string; schema: Record<string, unknown> }[] } | undefined)?.parameters ?? [];
      expect({ template, cursor: parameters.find((parameter) => parameter.in === 'query' && parameter.name === 'cursor')?.schema }).toEqual({ template, cursor: expect.objectContaining({ type: 'string', minLength: 1 }) });
    }
  });

  it('declares what any other answer is, a problem document, on every operation: as an unexpected 500 and a 405 are sent', async () => {
    const user = await signUp(api);
    const failing = jest.spyOn(api.core.jobs, 'get').mockRejectedValueOnce(new Error('an unexpected failure'));
    let unexpected: CallResult;
    try {
      unexpected = await call(api, '/v1/jobs/00000000-0000-4000-8000-000000000000', { token: user.token });
    } finally {
      failing.mockRestore();
    }
    const wrongMethod = await call(api, '/v1/jobs', { method: 'PUT', token: user.token });
    expect([unexpected.status, wrongMethod.status]).toEqual([500, 405]);
    for (const [template, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const other = operation.responses.default;
        expect({ operation: `${method} ${template}`, media: Object.keys(other?.content ?? {}) }).toEqual({ operation: `${method} ${template}`, media: ['application/problem+json'] });
        for (const sent of [unexpected, wrongMethod]) expect(bodyDepartures(document, other!.content!['application/problem+json']!.schema!, sent.body)).toEqual([]);
      }
    }
  });

  it('answers every operation, asked rightly and wrongly, with a status, headers and body its document declares', async () => {
    const found: string[] = [];
    const asked = new Set<string>();
    /** One request, its answer held against the operation the template names. */
    const ask = async (method: string, template: string, pathname: string, options: CallOptions = {}): Promise<CallResult> => {
      const response = await call(api, pathname, { ...options, method: method.toUpperCase() });
      asked.add(`${method} ${template}`);
      found.push(...departures(document, method, template, response));
      return response;
    };
    const user = await signUp(api);
    const other = await signUp(api);
    const token = user.token;
    const missing = '00000000-0000-4000-8000-000000000000';

    await ask('get', '/healthz', '/healthz');
    await ask('get', '/readyz', '/readyz');
    // Draining: readiness answers 503 (the problem names what is not ready).
    api.lifecycle.draining = true;
    try {
      await ask('get', '/readyz', '/readyz');
    } finally {
      api.lifecycle.draining = false;
    }
    await ask('get', '/metrics', '/metrics');
    await ask('get', '/v1/job-types', '/v1/job-types');

    // Accounts.
    const password = 'correct horse battery staple';
    await ask('post', '/v1/auth/register', '/v1/auth/register', { json: { email: `tour-${Date.now()}@example.com`, password } });
    await ask('post', '/v1/auth/register', '/v1/auth/register', { json: { email: 'no-password@example.com' } });
    await ask('post', '/v1/auth/register', '/v1/auth/register', { body: 'email=a', headers: { 'content-type': 'text/plain' } });
    // Over JSON_BODY_LIMIT_BYTES: 413, saying the limit.
    await ask('post', '/v1/auth/register', '/v1/auth/register', { json: { email: 'big@example.com', password: 'x'.repeat(api.env.JSON_BODY_LIMIT_BYTES) } });
    const login = await ask('post', '/v1/auth/login', '/v1/auth/login', { json: { email: user.email, password } });
    await ask('post', '/v1/auth/login', '/v1/auth/login', { json: { email: user.email, password: 'not the password at all' } });
    await ask('post', '/v1/auth/login', '/v1/auth/login', { json: { email: user.email } });
    const refreshCookie = login.headers.get('set-cookie')!.split(';')[0]!;
    await ask('post', '/v1/auth/refresh', '/v1/auth/refresh', { headers: { cookie: refreshCookie } });
    await ask('post', '/v1/auth/refresh', '/v1/auth/refresh', { headers: { cookie: refreshCookie, 'sec-fetch-site': 'cross-site' } });
    await ask('post', '/v1/auth/password-reset', '/v1/auth/password-reset', { json: { email: user.email } });
    await ask('post', '/v1/auth/password-reset', '/v1/auth/password-reset', { json: { email: 'not an address' } });
    await ask('post', '/v1/auth/password-reset/confirm', '/v1/auth/password-reset/confirm', { json: { token: 'A'.repeat(43), password } });
    await ask('get', '/v1/auth/me', '/v1/auth/me', { token });
    await ask('get', '/v1/usage', '/v1/usage', { token });
    await ask('get', '/v1/usage', '/v1/usage');

    // Files.
    const text = await ask('post', '/v1/files', '/v1/files', { token, body: 'one two two\n', headers: { 'content-type': 'text/plain', 'x-file-name': 'words.txt' } });
    const csv = await ask('post', '/v1/files', '/v1/files', { token, body: 'a,b\n1,2\n', headers: { 'content-type': 'text/csv' } });
    await ask('post', '/v1/files', '/v1/files', { token, body: 'no boundary', headers: { 'content-type': 'multipart/form-data; boundary=x' } });
    await ask('post', '/v1/files', '/v1/files', { token, body: 'x', headers: { 'content-type': 'text/plain', 'content-encoding': 'gzip' } });
    const fileId = String(text.body.id);
    await ask('get', '/v1/files/{id}', `/v1/files/${fileId}`, { token });
    await ask('get', '/v1/files/{id}', `/v1/files/${fileId}`, { token: other.token });
    await ask('get', '/v1/files/{id}/content', `/v1/files/${fileId}/content`, { token });
    await ask('get', '/v1/files/{id}/content', `/v1/files/${missing}/content`, { token });

    // Jobs: each public type, and refusals.
    const submitted: Record<string, string> = {};
    const inputs: Record<string, unknown> = {
      echo: { payload: { nested: [1, 'two', null] } },
      sleep: { ms: 60_000 },
      'file.checksum': { fileId, algorithm: 'md5' },
      'file.compress': { fileId, format: 'gzip' },
      'text.stats': { fileId },
      'csv.summary': { fileId: String(csv.body.id), header: true },
      'files.checksum': { fileIds: [fileId, String(csv.body.id)], failurePolicy: { mode: 'tolerate', maxFailed: 1 } },
      'echo.batch': { count: 2, payload: 'p' },
    };
    for (const [type, input] of Object.entries(inputs)) {
      const job = await ask('post', '/v1/jobs', '/v1/jobs', { token, json: { type, input }, headers: { 'idempotency-key': `tour-${type}` } });
      submitted[type] = String(job.body.id);
    }
    await ask('post', '/v1/jobs', '/v1/jobs', { token, json: { type: 'echo', input: { payload: 'another' } }, headers: { 'idempotency-key': 'tour-echo' } });
    await ask('post', '/v1/jobs', '/v1/jobs', { token, json: { type: 'no.such.type', input: {} } });
    await ask('post', '/v1/jobs', '/v1/jobs', { token, json: { type: 'file.checksum', input: { fileId: missing } } });
    await ask('post', '/v1/jobs', '/v1/jobs', { token, json: { type: 'echo', input: {} }, headers: { 'idempotency-key': 'not a key' } });
    await ask('post', '/v1/jobs', '/v1/jobs', { token, body: '{"type":"echo","input":{}}', headers: { 'content-type': 'text/plain' } });
    await ask('post', '/v1/jobs', '/v1/jobs', { token, json: { type: 'echo', input: { payload: 'x'.repeat(api.env.JSON_BODY_LIMIT_BYTES) } } });
    await ask('post', '/v1/jobs', '/v1/jobs', { json: { type: 'echo', input: {} } });
    const page = await ask('get', '/v1/jobs', '/v1/jobs?limit=2', { token });
    await ask('get', '/v1/jobs', `/v1/jobs?limit=2&cursor=${encodeURIComponent(String(page.body.nextCursor))}`, { token });
    await ask('get', '/v1/jobs', '/v1/jobs?include=input,result&status=queued', { token });
    await ask('get', '/v1/jobs', '/v1/jobs?cursor=not-a-cursor', { token });
    await ask('get', '/v1/jobs/{id}', `/v1/jobs/${submitted.echo}`, { token });
    await ask('get', '/v1/jobs/{id}', `/v1/jobs/${submitted.echo}`, { token: other.token });
    await ask('get', '/v1/jobs/{id}/tasks', `/v1/jobs/${submitted['echo.batch']}/tasks?limit=1`, { token });
    await ask('get', '/v1/jobs/{id}/tasks', `/v1/jobs/${submitted.echo}/tasks`, { token });
    await ask('get', '/v1/jobs/{id}/tasks', `/v1/jobs/${submitted['echo.batch']}/tasks?status=waiting`, { token });
    await ask('get', '/v1/jobs/{id}/events', `/v1/jobs/${missing}/events`, { token });
    await ask('get', '/v1/jobs/{id}/events', `/v1/jobs/${submitted.echo}/events`, { token, headers: { 'last-event-id': '9'.repeat(65) } });
    await ask('get', '/v1/jobs/events', '/v1/jobs/events', { token, headers: { 'last-event-id': '9'.repeat(65) } });
    await ask('delete', '/v1/jobs/{id}', `/v1/jobs/${submitted.sleep}`, { token });
    await ask('post', '/v1/jobs/{id}/cancel', `/v1/jobs/${submitted.sleep}/cancel`, { token });
    await ask('post', '/v1/jobs/{id}/cancel', `/v1/jobs/${submitted.sleep}/cancel`, { token });
    await ask('post', '/v1/jobs/{id}/retry', `/v1/jobs/${submitted.sleep}/retry`, { token });
    await ask('post', '/v1/jobs/{id}/retry', `/v1/jobs/${submitted.sleep}/retry`, { token });
    await ask('post', '/v1/jobs/{id}/cancel', `/v1/jobs/${submitted.sleep}/cancel`, { token });
    await ask('delete', '/v1/jobs/{id}', `/v1/jobs/${submitted.sleep}`, { token });
    await ask('delete', '/v1/jobs/{id}', `/v1/jobs/${submitted.sleep}`, { token });

    // Admin routes: a user is refused, an admin answered.
    const admin = await makeAdmin(api, (await signUp(api)).userId);
    for (const caller of [token, admin]) {
      await ask('get', '/v1/admin/queues', '/v1/admin/queues', { token: caller });
      await ask('get', '/v1/admin/dlq', '/v1/admin/dlq?limit=1', { token: caller });
      await ask('post', '/v1/admin/dlq/{id}/replay', `/v1/admin/dlq/${missing}/replay`, { token: caller });
      await ask('post', '/v1/admin/queues/pause', '/v1/admin/queues/pause', { token: caller });
      await ask('post', '/v1/admin/queues/resume', '/v1/admin/queues/resume', { token: caller });
    }
    await ask('get', '/v1/admin/dlq', '/v1/admin/dlq?limit=0', { token: admin });
    await ask('post', '/v1/admin/dlq/{id}/replay', `/v1/admin/dlq/${submitted.echo}/replay`, { token: admin });

    await ask('delete', '/v1/files/{id}', `/v1/files/${fileId}`, { token });
    await ask('delete', '/v1/files/{id}', `/v1/files/${fileId}`, { token });
    await ask('post', '/v1/auth/logout', '/v1/auth/logout', { token });

    expect(found).toEqual([]);
    const operations = Object.entries(document.paths).flatMap(([template, methods]) => Object.keys(methods).map((method) => `${method} ${template}`));
    // Every operation is asked (the streams' 200 are held against JobEvent above).
    expect(operations.filter((operation) => !asked.has(operation))).toEqual([]);
  });
});
