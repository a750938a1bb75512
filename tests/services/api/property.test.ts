import fc from 'fast-check';
import { call, countRows, signUp, startApi, type ApiFixture } from './fixture';
import { SECURE_REFRESH_COOKIE } from '../../../services/api/cookies';

/** Every operation of the API, from the served OpenAPI document (so a new route is covered without editing this test). */
async function operations(api: ApiFixture): Promise<{ method: string; path: string }[]> {
  const document = (await call<{ paths: Record<string, Record<string, unknown>> }>(api, '/openapi.json')).body;
  return Object.entries(document.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => ({ method: method.toUpperCase(), path })));
}

const TABLES = ['users', 'jobs', 'files', 'sessions', 'refresh_tokens', 'password_reset_tokens', 'job_events', 'signing_keys'] as const;

async function snapshot(api: ApiFixture): Promise<number[]> {
  return Promise.all(TABLES.map((table) => countRows(api, table)));
}

/** A value that is no valid body of any operation: garbage, wrong types, unknown keys, too short to be a password. */
const malformedBody = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.constant('{"email":'),
  fc.json({ maxDepth: 3 }).filter((text) => !/password/.test(text)),
  fc.record({ email: fc.oneof(fc.string({ maxLength: 40 }), fc.integer()), password: fc.string({ maxLength: 11 }), extra: fc.anything() }, { requiredKeys: [] }).map((value) => JSON.stringify(value)),
  fc.record({ type: fc.oneof(fc.string({ maxLength: 30 }), fc.constant('email.send')), input: fc.anything(), maxAttempts: fc.oneof(fc.integer(), fc.string()), priority: fc.double() }).map((value) => JSON.stringify(value)),
);

const hostileHeader = fc.record({
  'content-type': fc.constantFrom('application/json', 'text/plain', 'multipart/form-data; boundary=x', 'application/json; charset=utf-7', 'application/x-www-form-urlencoded'),
  'x-request-id': fc.string({ maxLength: 80 }).map((value) => value.replace(/[^\x20-\x7e]/g, '')),
  'idempotency-key': fc.string({ maxLength: 300 }).map((value) => value.replace(/[^\x20-\x7e]/g, '')),
  'last-event-id': fc.string({ maxLength: 80 }).map((value) => value.replace(/[^\x20-\x7e]/g, '')),
  cookie: fc.string({ maxLength: 80 }).map((value) => `${SECURE_REFRESH_COOKIE.name}=${value.replace(/[^\x21-\x7e]/g, '').replace(/;/g, '')}`),
  authorization: fc.oneof(fc.constant(''), fc.string({ maxLength: 80 }).map((value) => `Bearer ${value.replace(/[^\x21-\x7e]/g, '')}`)),
}, { requiredKeys: [] });

const hostileQuery = fc.dictionary(fc.constantFrom('status', 'type', 'limit', 'cursor', 'include', 'x', 'limit[]'), fc.string({ maxLength: 40 }), { maxKeys: 4 });

const hostileId = fc.oneof(fc.uuid(), fc.string({ minLength: 1, maxLength: 40 }).map((value) => encodeURIComponent(value)));

describe('hostile requests at every route (fast-check)', () => {
  let api: ApiFixture;
  let token: string;

  beforeAll(async () => {
    // A well-formed GET of an event stream opens one; it ends after EVENT_STREAM_MAX_SECONDS, so the run goes on.
    api = await startApi({ env: { AUTH_RATE_LIMIT_PER_MINUTE: '1000000', UPLOAD_RATE_LIMIT_PER_MINUTE: '1000000', STREAM_RATE_LIMIT_PER_MINUTE: '1000000', EVENT_STREAM_MAX_SECONDS: '1' } });
    token = (await signUp(api)).token;
  });

  afterAll(async () => {
    await api.close();
  });

  it('answers every malformed body, header and query with a 4xx problem+json, never a 5xx, and writes nothing', async () => {
    const routes = (await operations(api)).filter(({ path }) => path.startsWith('/v1/'));
    expect(routes.length).toBeGreaterThan(15);
    const before = await snapshot(api);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), malformedBody, hostileHeader, hostileQuery, hostileId, fc.boolean(), async (route, body, headers, query, id, signedIn) => {
        const path = route.path.replace(/\{[^}]+\}/g, id);
        const search = new URLSearchParams(query).toString();
        const sendsBody = route.method !== 'GET' && route.method !== 'DELETE';
        // Any bytes are a valid raw upload; an upload is made malformed by a multipart type its body cannot match.
        const upload = route.method === 'POST' && route.path === '/v1/files' ? { 'content-type': 'multipart/form-data; boundary=never-in-the-body' } : {};
        const response = await fetch(`${api.baseUrl}${path}${search ? `?${search}` : ''}`, {
          method: route.method,
          headers: { ...headers, ...upload, ...(signedIn ? { authorization: `Bearer ${token}` } : {}) },
          body: sendsBody ? body : undefined,
        });
        // An event stream the request opened (GET /v1/jobs/events, signed in) runs until the server's maximum duration: its answer is its status and headers.
        if (response.headers.get('content-type')?.startsWith('text/event-stream')) await response.body?.cancel();
        else await response.arrayBuffer();
        // A well-formed request can succeed (GET of the caller's empty list, logout, a refused reset request that is 202): what matters is no 5xx and nothing written.
        expect(response.status).toBeLessThan(500);
        if (response.status >= 400) expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      }),
      { numRuns: 300 },
    );
    expect(await snapshot(api)).toEqual(before);
  });
});
