import { bullJobKey } from '../../../services/core/queue/keys';
import { call, countRows, signUp, startApi, type ApiFixture } from './fixture';

/** A JSON text nested `depth` levels deep: [[[…]]]. JSON.stringify would recurse, so it is built as text. */
function nestedArrays(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`;
}

describe('hostile input: one user\'s data cannot hurt the platform or other users', () => {
  let api: ApiFixture;
  let token: string;

  beforeAll(async () => {
    // Pages of megabytes are read and written back to back here; how many a user may read or submit a second is abuse.test's and submit-bytes.test's.
    api = await startApi({ env: { JOB_DATA_READ_BYTES_PER_SECOND: String(1_024 ** 3), SUBMIT_BYTES_PER_SECOND: String(1_024 ** 3) } });
    token = (await signUp(api)).token;
  });

  afterAll(async () => {
    await api.close();
  });

  it('refuses a NUL character in a job\'s input with 400 problem+json naming the field, and stores nothing', async () => {
    const before = await countRows(api, 'jobs');
    const response = await call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: { note: 'a\u0000b' } } } });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(response.body.errors).toEqual([{ field: 'body.input.payload.note', message: expect.stringMatching(/NUL/) }]);
    const inKey = await call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: { 'k\u0000': 1 } } } });
    expect(inKey.status).toBe(400);
    const surrogate = await call(api, '/v1/jobs', { token, body: '{"type":"echo","input":{"payload":"\\ud800"}}', headers: { 'content-type': 'application/json' } });
    expect(surrogate.status).toBe(400);
    expect(await countRows(api, 'jobs')).toBe(before);
  });

  it('refuses a __proto__ key anywhere in a body with 400 naming it, instead of dropping it without a word', async () => {
    const before = await countRows(api, 'jobs');
    const response = await call(api, '/v1/jobs', {
      token,
      body: '{"type":"echo","input":{"payload":{"kept":1,"nested":[{"__proto__":{"isAdmin":true}}]}}}',
      headers: { 'content-type': 'application/json' },
    });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(response.body.errors).toEqual([{ field: 'body.input.payload.nested.0.__proto__', message: expect.stringMatching(/__proto__/) }]);
    expect(await countRows(api, 'jobs')).toBe(before);
    // The word as a value, and a constructor.prototype path, are data like any other and come back as sent.
    const payload = { note: '__proto__', constructor: { prototype: { y: 2 } } };
    const accepted = await call<{ input: unknown }>(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload } } });
    expect(accepted.status).toBe(202);
    expect(accepted.body.input).toEqual({ payload });
  });

  it('refuses a NUL character in a query parameter with 400 naming it, before PostgreSQL sees it', async () => {
    const response = await call(api, '/v1/jobs?type=echo%00', { token });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(response.body.errors).toEqual([{ field: 'query.type', message: expect.stringMatching(/NUL/) }]);
    expect(api.logLines.filter((line) => line.level === 'error')).toEqual([]);
  });

  it('takes a page size only in decimal digits: 0x10, 1e1, " 5" and 5.0 are 400 naming query.limit, not other spellings of a size', async () => {
    for (const path of ['/v1/jobs', '/v1/jobs/0190c0de-0000-7000-8000-000000000000/tasks']) {
      for (const spelling of ['0x10', '1e1', '%205', '5.0', '', '-1', '0']) {
        const response = await call(api, `${path}?limit=${spelling}`, { token });
        expect({ path, spelling, status: response.status }).toEqual({ path, spelling, status: 400 });
        expect(response.headers.get('content-type')).toMatch(/application\/problem\+json/);
        expect(response.body.errors).toEqual([{ field: 'query.limit', message: expect.stringMatching(/decimal digits/) }]);
      }
    }
    const page = await call<{ items: unknown[] }>(api, '/v1/jobs?limit=007', { token });
    expect(page.status).toBe(200);
  });

  it('answers a path id that is not valid percent-encoding like any other malformed id: 404 problem+json', async () => {
    for (const [method, path] of [
      ['GET', '/v1/jobs/%ZZ'],
      ['POST', '/v1/jobs/%E0%A4%A/cancel'],
      ['GET', '/v1/files/%ZZ/content'],
    ] as const) {
      const response = await call(api, path, { method, token });
      expect({ path, status: response.status }).toEqual({ path, status: 404 });
      expect(response.headers.get('content-type')).toMatch(/application\/problem\+json/);
    }
    expect(api.logLines.filter((line) => line.level === 'error')).toEqual([]);
  });

  it('accepts the other submissions of a burst that holds a NUL, each answered 202', async () => {
    const burst = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: index === 7 ? 'bad\u0000' : `ok ${index}` } } }),
      ),
    );
    expect(burst.map((response) => response.status)).toEqual(burst.map((_, index) => (index === 7 ? 400 : 202)));
  });

  it('refuses a number PostgreSQL would store as hundreds of digits, naming it, and stores nothing', async () => {
    const before = await countRows(api, 'jobs');
    // Written 1e308, read back from jsonb as 309 digits: a MiB of them would be read back as 45 MB.
    const refused = await call(api, '/v1/jobs', { token, body: '{"type":"echo","input":{"payload":{"values":[1,1e308]}}}', headers: { 'content-type': 'application/json' } });
    expect(refused.status).toBe(400);
    expect(refused.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(refused.body.errors).toEqual([{ field: 'body.input.payload.values.1', message: expect.stringMatching(/send it as a string/) }]);
    expect((await call(api, '/v1/jobs', { token, body: '{"type":"echo","input":{"payload":{"tiny":5e-324}}}', headers: { 'content-type': 'application/json' } })).status).toBe(400);
    expect(await countRows(api, 'jobs')).toBe(before);
    const accepted = await call<{ id: string }>(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: { values: [1e20, 1e-20, '1e308'] } } } });
    expect(accepted.status).toBe(202);
  });

  it('answers 400, not 500, for a payload nested 5,000 levels deep', async () => {
    const response = await call(api, '/v1/jobs', {
      token,
      body: `{"type":"echo","input":{"payload":${nestedArrays(5_000)}}}`,
      headers: { 'content-type': 'application/json' },
    });
    expect(response.status).toBe(400);
    expect(response.body.detail).toMatch(/nested deeper than 64 levels/);
    const allowed = await call(api, '/v1/jobs', {
      token,
      body: `{"type":"echo","input":{"payload":${nestedArrays(60)}}}`,
      headers: { 'content-type': 'application/json' },
    });
    expect(allowed.status).toBe(202);
  });

  it('refuses an object of more than 1,000 keys with 400 naming it, before JSON.parse, the schema, the hash or PostgreSQL spend a pass on it; the same values in an array are taken', async () => {
    const before = await countRows(api, 'jobs');
    // 90,000 keys in one object: about 0.8 MB, a second or two of the API's event loop once taken in.
    const wide = Object.fromEntries(Array.from({ length: 90_000 }, (_, index) => [`_${index.toString(36)}`, 0]));
    const refused = await call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: { rows: [wide] } } }, headers: { 'idempotency-key': 'wide-object' } });
    expect(refused.status).toBe(400);
    expect(refused.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(refused.body.errors).toEqual([{ field: 'body.input.payload.rows.0', message: expect.stringMatching(/more than 1000 keys/) }]);
    const oneOver = Object.fromEntries(Array.from({ length: 1_001 }, (_, index) => [`k${index}`, index]));
    expect((await call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: oneOver } } })).status).toBe(400);
    expect(await countRows(api, 'jobs')).toBe(before);
    const atLimit = Object.fromEntries(Array.from({ length: 1_000 }, (_, index) => [`k${index}`, index]));
    expect((await call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: atLimit } } })).status).toBe(202);
    expect((await call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: Object.values(wide) } } })).status).toBe(202);
    // Found in the text before JSON.parse spends its time on the object: a body broken after it is refused for the object.
    const broken = `${JSON.stringify({ type: 'echo', input: { payload: { rows: [wide] } } }).slice(0, -2)},]`;
    const early = await call(api, '/v1/jobs', { token, body: broken, headers: { 'content-type': 'application/json' } });
    expect(early.status).toBe(400);
    expect(early.body.errors).toEqual([{ field: 'body.input.payload.rows.0', message: expect.stringMatching(/more than 1000 keys/) }]);
  });

  it('refuses an echo.batch whose payload, copied into every task, would pass the fan-out\'s input budget: 400 naming the payload, nothing stored', async () => {
    const { token: owner } = await signUp(api);
    const before = await countRows(api, 'jobs');
    // 100 KB copied into 10,000 tasks is a gigabyte of task inputs from a 100 KB request.
    const amplified = await call(api, '/v1/jobs', { token: owner, json: { type: 'echo.batch', input: { count: 10_000, payload: 'x'.repeat(100_000) } } });
    expect(amplified.status).toBe(400);
    expect(amplified.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(amplified.body.errors).toEqual([{ field: 'body.input.payload', message: expect.stringMatching(/16777216 bytes/) }]);
    // 8,192 tasks of a payload whose JSON is 2,048 bytes: exactly the budget, and one byte more.
    const overByOne = await call(api, '/v1/jobs', { token: owner, json: { type: 'echo.batch', input: { count: 8_192, payload: 'x'.repeat(2_047) } } });
    expect(overByOne.status).toBe(400);
    expect(await countRows(api, 'jobs')).toBe(before);
    const atLimit = await call<{ tasks: { total: number } }>(api, '/v1/jobs', { token: owner, json: { type: 'echo.batch', input: { count: 8_192, payload: 'x'.repeat(2_046) } } });
    expect(atLimit.status).toBe(202);
    expect(atLimit.body.tasks.total).toBe(8_192);
  });

  it('keeps payloads out of Redis: the queue entry of a 400 KB job names only the job', async () => {
    const payload = 'x'.repeat(400_000);
    const { body: job, status } = await call<{ id: string }>(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload } } });
    expect(status).toBe(202);
    const key = bullJobKey(api.env.QUEUE_PREFIX, job.id);
    let data: string | null = null;
    for (let tries = 0; tries < 100 && data === null; tries += 1) {
      data = await api.core.redis.client.hget(key, 'data');
      if (data === null) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(JSON.parse(data as string)).toEqual({ jobId: job.id });
    expect(Number(await api.core.redis.client.memory('USAGE', key))).toBeLessThan(4_096);
  });

  it('lists summaries without input and result, and bounds a page that includes them', async () => {
    const { token: owner } = await signUp(api);
    const big = 'y'.repeat(900_000);
    for (let index = 0; index < 6; index += 1) {
      expect((await call(api, '/v1/jobs', { token: owner, json: { type: 'echo', input: { payload: big } } })).status).toBe(202);
    }
    const summaries = await call<{ items: Record<string, unknown>[]; nextCursor: string | null }>(api, '/v1/jobs?limit=100', { token: owner });
    expect(summaries.status).toBe(200);
    expect(summaries.body.items).toHaveLength(6);
    for (const item of summaries.body.items) {
      expect(item).not.toHaveProperty('input');
      expect(item).not.toHaveProperty('result');
    }
    expect(summaries.text.length).toBeLessThan(10_000);

    const first = await call<{ items: { input: { payload: string } }[]; nextCursor: string | null }>(api, '/v1/jobs?limit=100&include=input', { token: owner });
    expect(first.status).toBe(200);
    expect(first.text.length).toBeLessThanOrEqual(4 * 1_048_576 + 1_024);
    expect(first.body.items.length).toBeGreaterThanOrEqual(1);
    expect(first.body.items.length).toBeLessThan(6);
    expect(first.body.items[0]?.input.payload).toBe(big);
    expect(first.body.nextCursor).not.toBeNull();
    const rest = await call<{ items: unknown[]; nextCursor: string | null }>(api, `/v1/jobs?limit=100&include=input&cursor=${first.body.nextCursor}`, { token: owner });
    expect(first.body.items.length + rest.body.items.length).toBe(6);
    expect(rest.body.nextCursor).toBeNull();

    expect((await call(api, '/v1/jobs?include=owner', { token: owner })).status).toBe(400);
  });

  it('reads no more inputs than a page that includes them has room for, not every job of the page', async () => {
    const { token: owner } = await signUp(api);
    const big = 'z'.repeat(900_000);
    for (let index = 0; index < 20; index += 1) {
      expect((await call(api, '/v1/jobs', { token: owner, json: { type: 'echo', input: { payload: `${index}${big}` } } })).status).toBe(202);
    }
    // What PostgreSQL hands the API: each row carrying an input is about 900 KB the API parses.
    const pool = api.core.generalPool;
    const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<{ rows?: Record<string, unknown>[] }>;
    let inputsRead = 0;
    const spy = jest.spyOn(pool, 'query').mockImplementation(((...args: unknown[]) =>
      query(...args).then((result) => {
        inputsRead += (result.rows ?? []).filter((row) => typeof row.input === 'object' && row.input !== null).length;
        return result;
      })) as unknown as typeof pool.query);
    try {
      const pages: number[] = [];
      let cursor: string | null = null;
      do {
        const page: { status: number; body: { items: { input: { payload: string } }[]; nextCursor: string | null } } = await call(api, `/v1/jobs?limit=100&include=input${cursor ? `&cursor=${cursor}` : ''}`, { token: owner });
        expect(page.status).toBe(200);
        pages.push(page.body.items.length);
        cursor = page.body.nextCursor;
      } while (cursor);
      // Four items of 900 KB fill a 4 MiB page; every job is listed once, newest first.
      expect(pages).toEqual([4, 4, 4, 4, 4]);
      // Each page reads its four and at most one more batch of four (the old page read all 21 rows it looked at: 20 + 16 + 12 + 8 + 4 = 60).
      expect(inputsRead).toBeLessThanOrEqual(5 * 8);
    } finally {
      spy.mockRestore();
    }
  });
});
