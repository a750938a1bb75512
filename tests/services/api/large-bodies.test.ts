import net from 'node:net';
import { LARGE_BODIES_AT_ONCE_PER_OWNER, LARGE_BODY_BYTES, SLOW_SMALL_BODIES_PER_OWNER } from '../../../services/api/middleware/json-body';
import { call, signUp, startApi, type ApiFixture } from './fixture';

/** The JSON limit of these tests: a process then holds 16 of it at once (4 MiB), 16 bodies declaring it. */
const LIMIT = 256 * 1_024;
const TIMEOUT_SECONDS = 3;

/** An echo submit whose JSON body is exactly `bytes` long. */
function echoBody(bytes: number): string {
  const shell = JSON.stringify({ type: 'echo', input: { payload: '' } });
  return JSON.stringify({ type: 'echo', input: { payload: 'x'.repeat(bytes - shell.length) } });
}

/** A submit over a raw socket that sends its headers and half its body, then nothing more until told: a slow client. */
interface SlowSubmit {
  /** The first response line, once one came (or the connection closed without one: ''). */
  answer: Promise<string>;
  /** Whether an answer (or the end of the connection) has come yet. */
  answered(): boolean;
  close(): void;
}

function slowSubmit(api: ApiFixture, token: string, declaredBytes = LIMIT, contentEncoding?: string): SlowSubmit {
  const body = echoBody(declaredBytes);
  const socket = net.connect(new URL(api.baseUrl).port ? Number(new URL(api.baseUrl).port) : 80, '127.0.0.1');
  let received = '';
  let done = false;
  const answer = new Promise<string>((resolve) => {
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      if (received.includes('\r\n')) {
        done = true;
        resolve(received.slice(0, received.indexOf('\r\n')));
      }
    });
    socket.on('close', () => {
      done = true;
      resolve(received.includes('\r\n') ? received.slice(0, received.indexOf('\r\n')) : '');
    });
    socket.on('error', () => undefined);
  });
  socket.write(
    `POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\n${contentEncoding ? `Content-Encoding: ${contentEncoding}\r\n` : ''}Content-Length: ${body.length}\r\n\r\n`,
  );
  socket.write(body.slice(0, body.length / 2));
  return { answer, answered: () => done, close: () => socket.destroy() };
}

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('JSON bodies: large ones held to a bounded room per API process, a few per user, each given a time to arrive; small ones a few per user arriving slowly', () => {
  let api: ApiFixture;

  beforeAll(async () => {
    // Many large bodies of one user arrive at once here; how many bytes a user may submit a second is submit-bytes.test's.
    api = await startApi({ env: { JSON_BODY_LIMIT_BYTES: String(LIMIT), LARGE_BODY_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS), AUTH_RATE_LIMIT_PER_MINUTE: '1000', SUBMIT_BYTES_PER_SECOND: String(1_024 ** 3) } });
  });

  afterAll(async () => {
    await api.close();
  });

  it(`refuses a user's large body past ${LARGE_BODIES_AT_ONCE_PER_OWNER} at once with 429 before reading it, while another user's is taken`, async () => {
    const greedy = await signUp(api);
    const other = await signUp(api);
    const slow = Array.from({ length: LARGE_BODIES_AT_ONCE_PER_OWNER }, () => slowSubmit(api, greedy.token));
    try {
      await settle(200);
      const refused = await call(api, '/v1/jobs', { token: greedy.token, body: echoBody(LARGE_BODY_BYTES + 100), headers: { 'content-type': 'application/json' } });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(refused.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
      // Refused unread, and within the drain bound: dropped after the answer, the connection kept (settleUnreadBody).
      expect(refused.headers.get('connection')).toBe('keep-alive');
      expect(refused.body.detail).toMatch(/large request bodies/);

      const taken = await call(api, '/v1/jobs', { token: other.token, body: echoBody(LARGE_BODY_BYTES + 100), headers: { 'content-type': 'application/json' } });
      expect(taken.status).toBe(202);
      // Small submits never count: the greedy user's go through beside its held large ones.
      const small = await call(api, '/v1/jobs', { token: greedy.token, json: { type: 'echo', input: { payload: 'hello' } } });
      expect(small.status).toBe(202);
    } finally {
      for (const submit of slow) submit.close();
    }
  });

  it('holds a gzip body declared a little over the limit to the large bodies\' rules: it may still decode to within it', async () => {
    const { token } = await signUp(api);
    // Half sent, never finished: what is sent need not be gzip for its room to be held.
    const slow = Array.from({ length: LARGE_BODIES_AT_ONCE_PER_OWNER }, () => slowSubmit(api, token, LIMIT + 1_000, 'gzip'));
    try {
      await settle(200);
      const refused = await call(api, '/v1/jobs', { token, body: echoBody(LARGE_BODY_BYTES + 100), headers: { 'content-type': 'application/json' } });
      expect(refused.status).toBe(429);
      expect(refused.body.detail).toMatch(/large request bodies/);
    } finally {
      for (const submit of slow) submit.close();
    }
  });

  it('answers 408 to a large body that does not arrive in time, and gives its room back', async () => {
    const { token } = await signUp(api);
    const slow = slowSubmit(api, token);
    expect(await slow.answer).toBe('HTTP/1.1 408 Request Timeout');
    // Its room and its place in the user's four are free again.
    const next = Array.from({ length: LARGE_BODIES_AT_ONCE_PER_OWNER }, () => call(api, '/v1/jobs', { token, body: echoBody(LARGE_BODY_BYTES + 100), headers: { 'content-type': 'application/json' } }));
    expect((await Promise.all(next)).map((answer) => answer.status)).toEqual(Array(LARGE_BODIES_AT_ONCE_PER_OWNER).fill(202));
  });

  it('lets in a large body only when the process has room for it, and the first to leave makes room', async () => {
    const holders = await Promise.all([signUp(api), signUp(api), signUp(api), signUp(api)]);
    const newcomer = await signUp(api);
    // Four users with four slow bodies each, declaring the limit: the process's room, full.
    const slow = holders.flatMap(({ token }) => Array.from({ length: LARGE_BODIES_AT_ONCE_PER_OWNER }, () => slowSubmit(api, token)));
    try {
      await settle(300);
      const waiting = call(api, '/v1/jobs', { token: newcomer.token, body: echoBody(LARGE_BODY_BYTES + 100), headers: { 'content-type': 'application/json' } });
      let answered = false;
      void waiting.then(() => (answered = true));
      await settle(500);
      expect(answered).toBe(false);
      slow[0]?.close();
      expect((await waiting).status).toBe(202);
      // The others were still being held when it was let in.
      expect(slow.slice(1).filter((submit) => submit.answered())).toHaveLength(0);
    } finally {
      for (const submit of slow) submit.close();
    }
  });

  it(`refuses a user's body past ${SLOW_SMALL_BODIES_PER_OWNER} small ones arriving for over a second, and takes it once they have`, async () => {
    const trickling = await signUp(api);
    const other = await signUp(api);
    const slow = Array.from({ length: SLOW_SMALL_BODIES_PER_OWNER }, () => slowSubmit(api, trickling.token, 10_000));
    try {
      await settle(1_300);
      const refused = await call(api, '/v1/jobs', { token: trickling.token, json: { type: 'echo', input: { payload: 'hello' } } });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
      expect(refused.body.detail).toMatch(/arriving for over 1 s/);
      // Another user's submits are not counted with them.
      expect((await call(api, '/v1/jobs', { token: other.token, json: { type: 'echo', input: { payload: 'hello' } } })).status).toBe(202);
    } finally {
      for (const submit of slow) submit.close();
    }
    await settle(200);
    expect((await call(api, '/v1/jobs', { token: trickling.token, json: { type: 'echo', input: { payload: 'hello' } } })).status).toBe(202);
  });
});
