import { execFile } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { REFUSED_BODY_DRAIN_BYTES } from '../../../services/api/refused-body';
import { bodyChunk, openSendingClient } from '../../harness/sending-client';
import { signUp, startApi, type ApiFixture } from './fixture';

const UPLOAD_LIMIT_BYTES = 1024 * 1024;
const execFileAsync = promisify(execFile);

/** A raw HTTP/1.1 exchange: what the server sent, and how many body bytes it took before it stopped the client. */
class RawClient {
  received = '';
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (this.received += chunk));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => undefined);
  }

  static async open(api: ApiFixture): Promise<RawClient> {
    const { hostname, port } = new URL(api.baseUrl);
    const socket = connect(Number(port), hostname);
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new RawClient(socket);
  }

  /**
   * Sends `head`, then as much of `body` (or of that many bytes of filler) as the socket takes, in chunked
   * framing when told (a body of undeclared length); answers the body bytes written before all
   * were sent or the server closed the connection.
   */
  async send(head: string, body: number | Buffer, { chunked = false } = {}): Promise<number> {
    const bodyBytes = typeof body === 'number' ? body : body.length;
    const filler = Buffer.alloc(256 * 1024, 0x71);
    this.socket.write(head);
    let written = 0;
    while (written < bodyBytes && !this.closed && !this.socket.destroyed) {
      const pieceBytes = Math.min(filler.length, bodyBytes - written);
      const piece = typeof body === 'number' ? filler.subarray(0, pieceBytes) : body.subarray(written, written + pieceBytes);
      const flushed = this.socket.write(chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece);
      written += piece.length;
      if (!flushed) await this.drainedOrClosed();
    }
    if (chunked && !this.closed && !this.socket.destroyed) this.socket.write('0\r\n\r\n');
    return written;
  }

  private drainedOrClosed(): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.socket.off('drain', wake).off('close', wake);
        resolve();
      };
      this.socket.on('drain', wake).on('close', wake);
    });
  }

  async until(text: string): Promise<string> {
    const deadline = Date.now() + 20_000;
    while (!this.received.includes(text)) {
      if (Date.now() > deadline) throw new Error(`no ${JSON.stringify(text)} in ${JSON.stringify(this.received.slice(0, 500))}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.received;
  }

  close(): void {
    this.socket.destroy();
  }
}

function requestHead(path: string, headers: Record<string, string | number>, method = 'POST'): string {
  return `${method} ${path} HTTP/1.1\r\nHost: localhost\r\n${Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('')}\r\n`;
}

/**
 * A request refused before its body is read: its client gets the answer (Node's fetch, which
 * writes the whole body before it reads, included), a body within the drain bound is read and
 * dropped so the connection serves the next request, and one past it is not read.
 */
describe('refused request bodies', () => {
  let api: ApiFixture;
  let token: string;

  beforeAll(async () => {
    api = await startApi({ env: { UPLOAD_LIMIT_BYTES: String(UPLOAD_LIMIT_BYTES) } });
    ({ token } = await signUp(api));
  });
  afterAll(async () => {
    await api?.close();
  });

  it('answers 413 to Node\'s fetch sending an upload well past the limit from another process, not a reset under its body', async () => {
    // The client in a process of its own, as a real one is: the answer and the close then race its writes.
    const outcomes = await Promise.all(
      [0, 1, 2].map(async () => {
        const script = `fetch(${JSON.stringify(`${api.baseUrl}/v1/files`)}, { method: 'POST', headers: { authorization: ${JSON.stringify(`Bearer ${token}`)}, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(${24 * UPLOAD_LIMIT_BYTES}, 0x61) })
          .then((response) => console.log(response.status, response.headers.get('content-type')), (error) => console.log(error.cause?.code ?? String(error)))`;
        const { stdout } = await execFileAsync(process.execPath, ['-e', script]);
        return stdout.trim();
      }),
    );
    expect(outcomes).toEqual(outcomes.map(() => expect.stringMatching(/^413 application\/problem\+json/)));
  });

  it('reads a refused upload within the bound to its end and answers the next request on the same connection', async () => {
    const client = await RawClient.open(api);
    try {
      const bodyBytes = 2 * UPLOAD_LIMIT_BYTES;
      const written = await client.send(requestHead('/v1/files', { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': bodyBytes }), bodyBytes);
      expect(written).toBe(bodyBytes);
      const answer = await client.until('}');
      expect(answer).toMatch(/^HTTP\/1\.1 413 /);
      expect(answer.toLowerCase()).not.toContain('connection: close');
      client.socket.write(`GET /v1/auth/me HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n\r\n`);
      expect(await client.until('HTTP/1.1 200 ')).toMatch(/HTTP\/1\.1 200 /);
    } finally {
      client.close();
    }
  });

  it.each([
    ['a JSON submit past the body limit', '/v1/jobs', 'application/json', 413],
    ['a JSON submit without a token', '/v1/jobs', 'application/json', 401],
    ['an upload past the limit', '/v1/files', 'application/octet-stream', 413],
  ])('answers %s declared longer than the drain bound at once, and closes without reading the body', async (_what, path, contentType, status) => {
    const client = await RawClient.open(api);
    try {
      const declared = 4 * REFUSED_BODY_DRAIN_BYTES;
      const headers: Record<string, string | number> = { 'content-type': contentType, 'content-length': declared };
      if (status !== 401) headers.authorization = `Bearer ${token}`;
      const written = await client.send(requestHead(path, headers), declared);
      expect(client.received).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      expect(client.received.toLowerCase()).toContain('connection: close');
      // What the kernel's buffers took before the close, far below the body.
      expect(written).toBeLessThan(REFUSED_BODY_DRAIN_BYTES);
    } finally {
      client.close();
    }
  });

  it('answers a chunked JSON submit 413 as soon as it passes the limit, and closes without reading the rest', async () => {
    const client = await RawClient.open(api);
    try {
      const sent = REFUSED_BODY_DRAIN_BYTES;
      const written = await client.send(requestHead('/v1/jobs', { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' }), sent, { chunked: true });
      const answer = await client.until('}');
      expect(answer).toMatch(/^HTTP\/1\.1 413 /);
      // Read part way: the rest of it would be taken for the next request.
      expect(answer.toLowerCase()).toContain('connection: close');
      expect(written).toBeLessThan(sent);
    } finally {
      client.close();
    }
  });

  it('reads on for a while after refusing a body part way, so a client still sending meets the answer and a close, not a reset under its writes', async () => {
    const { hostname, port } = new URL(api.baseUrl);
    const client = await openSendingClient(Number(port), hostname);
    try {
      client.socket.write(requestHead('/v1/jobs', { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' }));
      client.socket.write(bodyChunk(api.env.JSON_BODY_LIMIT_BYTES + 64 * 1024));
      const answer = await client.until('}');
      expect(answer).toMatch(/^HTTP\/1\.1 413 /);
      expect(answer.toLowerCase()).toContain('connection: close');
      // Time for a close under the unread bytes to have reached the client, had there been one.
      await new Promise((resolve) => setTimeout(resolve, 300));
      client.socket.write(bodyChunk(256 * 1024));
      client.socket.end('0\r\n\r\n');
      await client.closed;
      expect(client.errors).toEqual([]);
    } finally {
      client.socket.destroy();
    }
  });

  it('answers a gzip JSON submit of undeclared length that inflates past the limit 413, and closes without reading the rest', async () => {
    const client = await RawClient.open(api);
    try {
      // Random bytes do not compress: it passes the limit as it decodes, long before its end.
      const gzipped = gzipSync(randomBytes(32 * 1024 * 1024), { level: 0 });
      const written = await client.send(requestHead('/v1/jobs', { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-encoding': 'gzip', 'transfer-encoding': 'chunked' }), gzipped, { chunked: true });
      const answer = await client.until('}');
      expect(answer).toMatch(/^HTTP\/1\.1 413 /);
      expect(answer.toLowerCase()).toContain('connection: close');
      expect(written).toBeLessThan(gzipped.length);
    } finally {
      client.close();
    }
  });

  it('answers a gzip JSON submit declared longer than the drain bound 413 at once, and closes without reading it', async () => {
    const client = await RawClient.open(api);
    try {
      const declared = 4 * REFUSED_BODY_DRAIN_BYTES;
      const written = await client.send(requestHead('/v1/jobs', { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': declared }), declared);
      expect(client.received).toMatch(/^HTTP\/1\.1 413 /);
      expect(client.received.toLowerCase()).toContain('connection: close');
      expect(written).toBeLessThan(REFUSED_BODY_DRAIN_BYTES);
    } finally {
      client.close();
    }
  });
});

/**
 * A body its route never reads (a GET, a 2xx that takes none) is bounded as a refused one is,
 * instead of Node reading the whole of it to drop it, however long.
 */
describe('request bodies a route leaves unread', () => {
  let api: ApiFixture;
  let token: string;

  beforeAll(async () => {
    api = await startApi();
    ({ token } = await signUp(api));
  });
  afterAll(async () => {
    await api?.close();
  });

  it('answers a GET sent with a body declared longer than the drain bound, and closes without reading the body', async () => {
    const client = await RawClient.open(api);
    try {
      const declared = 4 * REFUSED_BODY_DRAIN_BYTES;
      const written = await client.send(requestHead('/v1/auth/me', { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': declared }, 'GET'), declared);
      const answer = await client.until('}');
      expect(answer).toMatch(/^HTTP\/1\.1 200 /);
      expect(answer.toLowerCase()).toContain('connection: close');
      expect(written).toBeLessThan(REFUSED_BODY_DRAIN_BYTES);
    } finally {
      client.close();
    }
  });

  it('reads a GET\'s chunked body no further than the drain bound, then closes the connection', async () => {
    const client = await RawClient.open(api);
    try {
      const sent = 2 * REFUSED_BODY_DRAIN_BYTES;
      const written = await client.send(requestHead('/v1/auth/me', { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' }, 'GET'), sent, { chunked: true });
      expect(await client.until('}')).toMatch(/^HTTP\/1\.1 200 /);
      expect(written).toBeLessThan(sent);
      expect(client.closed).toBe(true);
    } finally {
      client.close();
    }
  });

  it('reads and drops a small body a GET leaves unread, and answers the next request on the same connection', async () => {
    const client = await RawClient.open(api);
    try {
      const bodyBytes = 64 * 1024;
      const written = await client.send(requestHead('/v1/auth/me', { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': bodyBytes }, 'GET'), bodyBytes);
      expect(written).toBe(bodyBytes);
      const answer = await client.until('}');
      expect(answer).toMatch(/^HTTP\/1\.1 200 /);
      expect(answer.toLowerCase()).not.toContain('connection: close');
      client.socket.write(`DELETE /v1/jobs/00000000-0000-4000-8000-000000000000 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n\r\n`);
      expect(await client.until('HTTP/1.1 404 ')).toMatch(/HTTP\/1\.1 404 /);
    } finally {
      client.close();
    }
  });
});
