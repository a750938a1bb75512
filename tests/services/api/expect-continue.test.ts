import { connect, type Socket } from 'node:net';
import { call, signUp, startApi, type ApiFixture } from './fixture';

/** What the server sent on the socket so far, as text. */
class RawExchange {
  private received = '';
  private readonly waiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.received += chunk;
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static async open(api: ApiFixture): Promise<RawExchange> {
    const { hostname, port } = new URL(api.baseUrl);
    const socket = connect(Number(port), hostname);
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new RawExchange(socket);
  }

  /** Waits until what was received holds `text`; fails past 10 s. */
  async until(text: string): Promise<string> {
    const deadline = Date.now() + 10_000;
    while (!this.received.includes(text)) {
      if (Date.now() > deadline) throw new Error(`no ${JSON.stringify(text)} in ${JSON.stringify(this.received)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
    return this.received;
  }

  /** Resolves once the server closed its side of the connection; fails past 10 s. */
  async ended(): Promise<void> {
    if (this.socket.readableEnded) return;
    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`the server kept the connection open after ${JSON.stringify(this.received)}`)), 10_000);
      this.socket.once('end', () => {
        clearTimeout(deadline);
        resolve();
      });
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A request's head asking to be told before its body is sent. */
function head(method: string, path: string, headers: Record<string, string | number>): string {
  return `${method} ${path} HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n${Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('')}\r\n`;
}

describe('Expect: 100-continue: a request the API refuses is refused before the client sends its body', () => {
  let api: ApiFixture;

  beforeAll(async () => {
    api = await startApi({ env: { QUOTA_STORED_BYTES: '100' } });
  });

  afterAll(async () => {
    await api.close();
  });

  it('answers an upload over the caller\'s quota 403 without 100 Continue first, and closes the connection', async () => {
    const { token } = await signUp(api);
    const first = await call(api, '/v1/files', { token, body: 'x'.repeat(100), headers: { 'content-type': 'text/plain' } });
    expect(first.status).toBe(201);

    const exchange = await RawExchange.open(api);
    try {
      exchange.socket.write(head('POST', '/v1/files', { authorization: `Bearer ${token}`, 'content-type': 'text/plain', 'content-length': 50 }));
      const answer = await exchange.until('\r\n\r\n');
      expect(answer).toMatch(/^HTTP\/1\.1 403 /);
      expect(answer).not.toMatch(/100 Continue/);
      expect(answer.toLowerCase()).toContain('connection: close');
    } finally {
      exchange.close();
    }
  });

  it('answers an upload whose Content-Length the quota\'s remaining bytes cannot hold 403 without 100 Continue first', async () => {
    const { token } = await signUp(api);
    expect((await call(api, '/v1/files', { token, body: 'x'.repeat(60), headers: { 'content-type': 'text/plain' } })).status).toBe(201);

    const exchange = await RawExchange.open(api);
    try {
      exchange.socket.write(head('POST', '/v1/files', { authorization: `Bearer ${token}`, 'content-type': 'text/plain', 'content-length': 41 }));
      const answer = await exchange.until('\r\n\r\n');
      expect(answer).toMatch(/^HTTP\/1\.1 403 /);
      expect(answer).not.toMatch(/100 Continue/);
    } finally {
      exchange.close();
    }
    expect((await call(api, '/v1/files', { token, body: 'y'.repeat(40), headers: { 'content-type': 'text/plain' } })).status).toBe(201);
  });

  it('answers a multipart upload longer than its envelope\'s slack at a full quota 403 without 100 Continue first', async () => {
    const { token } = await signUp(api);
    expect((await call(api, '/v1/files', { token, body: 'x'.repeat(100), headers: { 'content-type': 'text/plain' } })).status).toBe(201);

    const exchange = await RawExchange.open(api);
    try {
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'multipart/form-data; boundary=XX', 'content-length': 65 * 1024 };
      exchange.socket.write(head('POST', '/v1/files', headers));
      const answer = await exchange.until('\r\n\r\n');
      expect(answer).toMatch(/^HTTP\/1\.1 403 /);
      expect(answer).not.toMatch(/100 Continue/);
    } finally {
      exchange.close();
    }
  });

  it('says 100 Continue to an upload it takes, then stores it', async () => {
    const { token } = await signUp(api);
    const exchange = await RawExchange.open(api);
    try {
      exchange.socket.write(head('POST', '/v1/files', { authorization: `Bearer ${token}`, 'content-type': 'text/plain', 'content-length': 5 }));
      expect(await exchange.until('\r\n\r\n')).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n$/);
      exchange.socket.write('hello');
      expect(await exchange.until('"size":5')).toMatch(/HTTP\/1\.1 201 /);
    } finally {
      exchange.close();
    }
  });

  it('answers a submit without a valid token 401 without 100 Continue first, and says it to one it takes', async () => {
    const { token } = await signUp(api);
    const body = JSON.stringify({ type: 'echo', input: { payload: 'hi' } });
    const refused = await RawExchange.open(api);
    try {
      refused.socket.write(head('POST', '/v1/jobs', { authorization: 'Bearer not-a-token', 'content-type': 'application/json', 'content-length': body.length }));
      const answer = await refused.until('\r\n\r\n');
      expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    } finally {
      refused.close();
    }
    const taken = await RawExchange.open(api);
    try {
      taken.socket.write(head('POST', '/v1/jobs', { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': body.length }));
      expect(await taken.until('\r\n\r\n')).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n$/);
      taken.socket.write(body);
      expect(await taken.until('"status":"queued"')).toMatch(/HTTP\/1\.1 202 /);
    } finally {
      taken.close();
    }
  });

  it('answers a request a route takes without its body, for a client waiting for 100 Continue, and closes rather than wait for that body', async () => {
    const { token } = await signUp(api);
    const exchange = await RawExchange.open(api);
    try {
      exchange.socket.write(head('GET', '/v1/auth/me', { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': 10 }));
      const answer = await exchange.until('}');
      expect(answer).toMatch(/^HTTP\/1\.1 200 /);
      expect(answer).not.toMatch(/100 Continue/);
      expect(answer.toLowerCase()).toContain('connection: close');
      await exchange.ended();
    } finally {
      exchange.close();
    }
  });

  it('keeps the connection of a submit it said 100 Continue to, for the next request', async () => {
    const { token } = await signUp(api);
    const body = JSON.stringify({ type: 'echo', input: { payload: 'hi' } });
    const exchange = await RawExchange.open(api);
    try {
      exchange.socket.write(head('POST', '/v1/jobs', { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': body.length }));
      expect(await exchange.until('\r\n\r\n')).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n$/);
      exchange.socket.write(body);
      const answer = await exchange.until('"status":"queued"');
      expect(answer).toMatch(/HTTP\/1\.1 202 /);
      expect(answer.toLowerCase()).not.toContain('connection: close');
      exchange.socket.write(`GET /v1/auth/me HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n\r\n`);
      expect(await exchange.until('HTTP/1.1 200 ')).toMatch(/HTTP\/1\.1 200 /);
    } finally {
      exchange.close();
    }
  });
});
