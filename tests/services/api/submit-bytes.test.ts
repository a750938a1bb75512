import { openSendingClient } from '../../harness/sending-client';
import { call, signUp, startApi, type ApiFixture } from './fixture';

/** An echo submit of about `bytes` bytes. */
function echoBody(bytes: number): string {
  return JSON.stringify({ type: 'echo', input: { payload: 'x'.repeat(bytes - 40) } });
}

async function jobsOf(api: ApiFixture, userId: string): Promise<number> {
  const { rows } = await api.db.query<{ jobs: number }>('SELECT count(*)::int AS jobs FROM jobs WHERE owner_id = $1', [userId]);
  return rows[0]?.jobs ?? 0;
}

/** Sends a chunked submit (no Content-Length), as a client streaming its body does. */
async function chunkedSubmit(api: ApiFixture, token: string, body: string): Promise<{ status: number; detail?: string }> {
  const response = await fetch(`${api.baseUrl}/v1/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(body));
        controller.close();
      },
    }),
    duplex: 'half',
  } as RequestInit);
  const parsed = (await response.json()) as { detail?: string };
  return { status: response.status, detail: parsed.detail };
}

/** Waits out the Retry-After of a 429 and a little more, so the user's next second has begun. */
async function waitOut(retryAfter: string | null): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, Number(retryAfter ?? 1) * 1_000 + 100));
}

describe('submit bytes per user and second (SUBMIT_BYTES_PER_SECOND, its default)', () => {
  let api: ApiFixture;

  beforeAll(async () => {
    api = await startApi();
  });

  afterAll(async () => {
    await api.close();
  });

  it('answers a body over what is left of its user\'s second 429 with Retry-After, storing nothing, while another user submits on', async () => {
    const heavy = await signUp(api);
    const other = await signUp(api);
    const submit = (token: string, bytes: number) => call(api, '/v1/jobs', { token, body: echoBody(bytes), headers: { 'content-type': 'application/json' } });

    expect((await submit(heavy.token, 600_000)).status).toBe(202);
    const refused = await submit(heavy.token, 600_000);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    expect(refused.body).toMatchObject({ detail: expect.stringMatching(/SUBMIT_BYTES_PER_SECOND/) });
    expect(await jobsOf(api, heavy.userId)).toBe(1);

    expect((await submit(other.token, 600_000)).status).toBe(202);
    expect((await submit(other.token, 100)).status).toBe(202);

    await waitOut(refused.headers.get('retry-after'));
    expect((await submit(heavy.token, 600_000)).status).toBe(202);
    expect(await jobsOf(api, heavy.userId)).toBe(2);
  });

  it('refuses such a body before it is sent: no 100 Continue to a client that asked for one', async () => {
    const heavy = await signUp(api);
    expect((await call(api, '/v1/jobs', { token: heavy.token, body: echoBody(1_000_000), headers: { 'content-type': 'application/json' } })).status).toBe(202);

    const { hostname, port } = new URL(api.baseUrl);
    const client = await openSendingClient(Number(port), hostname);
    try {
      client.socket.write(
        `POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nAuthorization: Bearer ${heavy.token}\r\nContent-Type: application/json\r\nContent-Length: 500000\r\n\r\n`,
      );
      const answer = await client.until('\r\n\r\n');
      expect(answer).toMatch(/^HTTP\/1\.1 429 /);
      expect(answer).not.toMatch(/100 Continue/);
      expect(answer.toLowerCase()).toMatch(/retry-after: [1-9]/);
    } finally {
      client.socket.destroy();
    }
    expect(await jobsOf(api, heavy.userId)).toBe(1);
  });

  it('counts a chunked body once it is read: the next one finds the second spent', async () => {
    const heavy = await signUp(api);
    expect(await chunkedSubmit(api, heavy.token, echoBody(600_000))).toEqual({ status: 202, detail: undefined });
    const refused = await chunkedSubmit(api, heavy.token, echoBody(600_000));
    expect(refused).toEqual({ status: 429, detail: expect.stringMatching(/SUBMIT_BYTES_PER_SECOND/) });
    expect(await jobsOf(api, heavy.userId)).toBe(1);
  });

  it('leaves ordinary submits alone: hundreds of small inputs in a second all pass', async () => {
    const { token, userId } = await signUp(api);
    const statuses = await Promise.all(Array.from({ length: 300 }, (_, index) => call(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: { index, note: 'a small input' } } } }).then((response) => response.status)));
    expect(statuses.filter((status) => status === 202)).toHaveLength(300);
    expect(await jobsOf(api, userId)).toBe(300);
  });
});
