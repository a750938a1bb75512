import { createHash } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { call, countRows, signUp, startApi, type ApiFixture } from './fixture';

async function countObjects(directory: string): Promise<number> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).length;
}

describe('file routes', () => {
  const limit = 64 * 1024;
  let api: ApiFixture;
  let alice: string;
  let bob: string;

  beforeAll(async () => {
    api = await startApi({ env: { UPLOAD_LIMIT_BYTES: String(limit) } });
    alice = (await signUp(api)).token;
    bob = (await signUp(api)).token;
  });

  afterAll(async () => {
    await api.close();
  });

  it('stores a raw upload and serves its metadata and bytes to the owner', async () => {
    const text = 'hello, platform kit\n';
    const uploaded = await call(api, '/v1/files', { token: alice, body: text, headers: { 'content-type': 'text/plain', 'x-file-name': 'greeting%20one.txt' } });
    expect(uploaded.status).toBe(201);
    expect(uploaded.body).toEqual({
      id: expect.any(String),
      name: 'greeting one.txt',
      size: Buffer.byteLength(text),
      contentType: 'text/plain',
      sha256: createHash('sha256').update(text).digest('hex'),
      createdAt: expect.any(String),
    });
    expect(uploaded.headers.get('location')).toBe(`/v1/files/${String(uploaded.body.id)}`);

    const metadata = await call(api, `/v1/files/${String(uploaded.body.id)}`, { token: alice });
    expect(metadata.body).toEqual(uploaded.body);
    const content = await call(api, `/v1/files/${String(uploaded.body.id)}/content`, { token: alice });
    expect(content.status).toBe(200);
    expect(content.text).toBe(text);
    expect(content.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(content.headers.get('content-length')).toBe(String(Buffer.byteLength(text)));
  });

  it('stores the "file" part of a multipart upload', async () => {
    const form = new FormData();
    form.append('note', 'ignored field');
    form.append('file', new Blob(['a,b\n1,2\n'], { type: 'text/csv' }), 'numbers.csv');
    const uploaded = await call(api, '/v1/files', { token: alice, body: form });
    expect(uploaded.status).toBe(201);
    expect(uploaded.body).toMatchObject({ name: 'numbers.csv', size: 8, contentType: 'text/csv' });
  });

  it('keeps a multipart file name as the UTF-8 a browser sends, and still strips a bidi override from it', async () => {
    for (const [sent, stored] of [
      ['résumé 履歴書.txt', 'résumé 履歴書.txt'],
      ['invoice\u202Efdp.exe', 'invoicefdp.exe'],
    ]) {
      const form = new FormData();
      form.append('file', new Blob(['x'], { type: 'text/plain' }), sent);
      const uploaded = await call(api, '/v1/files', { token: alice, body: form });
      expect({ sent, status: uploaded.status, name: uploaded.body.name }).toEqual({ sent, status: 201, name: stored });
    }
  });

  it('names a download in Content-Disposition both ways: filename* as RFC 8187 encodes it, filename as an ASCII stand-in', async () => {
    const cases: [name: string, disposition: string][] = [
      ['report.txt', `attachment; filename="report.txt"; filename*=UTF-8''report.txt`],
      ["it's (final)*.txt", `attachment; filename="it's (final)*.txt"; filename*=UTF-8''it%27s%20%28final%29%2A.txt`],
      ['résumé "100%".txt', `attachment; filename="r_sum_ _100__.txt"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22100%25%22.txt`],
    ];
    for (const [name, disposition] of cases) {
      const uploaded = await call(api, '/v1/files', { token: alice, body: 'x', headers: { 'content-type': 'text/plain', 'x-file-name': encodeURIComponent(name) } });
      const content = await call(api, `/v1/files/${String(uploaded.body.id)}/content`, { token: alice });
      expect({ name, disposition: content.headers.get('content-disposition') }).toEqual({ name, disposition });
    }
  });

  it('reads an X-File-Name sent as raw UTF-8 bytes (curl with what was typed) as UTF-8, and one that is not UTF-8 as Latin-1', async () => {
    for (const [sent, stored] of [
      [Buffer.from('résumé 東京.txt').toString('latin1'), 'résumé 東京.txt'],
      [Buffer.from('café.txt', 'latin1').toString('latin1'), 'café.txt'],
    ] as const) {
      const uploaded = await call(api, '/v1/files', { token: alice, body: 'x', headers: { 'content-type': 'text/plain', 'x-file-name': sent } });
      expect({ status: uploaded.status, name: uploaded.body.name }).toEqual({ status: 201, name: stored });
    }
  });

  it('answers 400 for a multipart body without a file part, storing nothing', async () => {
    const before = await countRows(api, 'files');
    const form = new FormData();
    form.append('other', 'value');
    const response = await call(api, '/v1/files', { token: alice, body: form });
    expect(response.status).toBe(400);
    expect(response.body.errors).toEqual([{ field: 'file', message: 'is required' }]);
    expect(await countRows(api, 'files')).toBe(before);
  });

  it('answers 400 for a multipart body that ends inside a part, storing nothing and staying up', async () => {
    const beforeRows = await countRows(api, 'files');
    const beforeObjects = await countObjects(api.env.OBJECT_STORE_DIR);
    const headers = { 'content-type': 'multipart/form-data; boundary=XX' };
    // The body ends before the closing boundary: the parser errors each open part's stream as the request ends.
    const cutInFile = await call(api, '/v1/files', { token: alice, body: '--XX\r\nContent-Disposition: form-data; name="file"; filename="t.txt"\r\n\r\nabc', headers });
    expect(cutInFile.status).toBe(400);
    expect(cutInFile.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(cutInFile.body.detail).toMatch(/malformed multipart request/);
    const cutInIgnoredPart = await call(api, '/v1/files', { token: alice, body: '--XX\r\nContent-Disposition: form-data; name="other"; filename="o.txt"\r\n\r\nabc', headers });
    expect(cutInIgnoredPart.status).toBe(400);
    // The file part is whole (and stored by then); the part after it is cut off, so the request is refused all the same.
    const cutAfterFile = await call(api, '/v1/files', {
      token: alice,
      body: '--XX\r\nContent-Disposition: form-data; name="file"; filename="t.txt"\r\n\r\nabc\r\n--XX\r\nContent-Disposition: form-data; name="note"\r\n\r\nab',
      headers,
    });
    expect(cutAfterFile.status).toBe(400);
    expect(await countRows(api, 'files')).toBe(beforeRows);
    expect(await countObjects(api.env.OBJECT_STORE_DIR)).toBe(beforeObjects);
    expect((await call(api, '/v1/auth/me', { token: alice })).status).toBe(200);
  });

  it('answers 413 for a multipart body past the upload limit in all, whatever part holds the bytes, and stores nothing', async () => {
    const beforeRows = await countRows(api, 'files');
    const beforeObjects = await countObjects(api.env.OBJECT_STORE_DIR);
    const filePart = '--XX\r\nContent-Disposition: form-data; name="file"; filename="t.txt"\r\nContent-Type: text/plain\r\n\r\nabc\r\n';
    // Sent chunked, with no Content-Length to check up front: an ignored field, or a second file part, the parser reads and skips.
    const padding = 'z'.repeat(2 * limit);
    for (const [where, body] of [
      ['an ignored field before the file part', `--XX\r\nContent-Disposition: form-data; name="note"\r\n\r\n${padding}\r\n${filePart}--XX--\r\n`],
      ['a second file part after it', `${filePart}--XX\r\nContent-Disposition: form-data; name="file"; filename="u.txt"\r\n\r\n${padding}\r\n--XX--\r\n`],
    ]) {
      const chunks = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(body));
          controller.close();
        },
      });
      const response = await fetch(`${api.baseUrl}/v1/files`, {
        method: 'POST',
        headers: { authorization: `Bearer ${alice}`, 'content-type': 'multipart/form-data; boundary=XX' },
        body: chunks,
        duplex: 'half',
      } as RequestInit & { duplex: 'half' });
      expect({ where, status: response.status, type: response.headers.get('content-type') }).toEqual({ where, status: 413, type: expect.stringMatching(/^application\/problem\+json/) });
    }
    expect(await countRows(api, 'files')).toBe(beforeRows);
    expect(await countObjects(api.env.OBJECT_STORE_DIR)).toBe(beforeObjects);
  });

  it('answers 413 over the upload limit, raw or multipart, and stores nothing', async () => {
    const beforeRows = await countRows(api, 'files');
    const beforeObjects = await countObjects(api.env.OBJECT_STORE_DIR);
    const tooBig = Buffer.alloc(limit + 1, 0x61);
    const raw = await call(api, '/v1/files', { token: alice, body: tooBig, headers: { 'content-type': 'application/octet-stream' } });
    expect(raw.status).toBe(413);
    expect(raw.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const form = new FormData();
    form.append('file', new Blob([tooBig]), 'big.bin');
    const multipart = await call(api, '/v1/files', { token: alice, body: form });
    expect(multipart.status).toBe(413);
    expect(await countRows(api, 'files')).toBe(beforeRows);
    expect(await countObjects(api.env.OBJECT_STORE_DIR)).toBe(beforeObjects);
  });

  it('answers 413 for a chunked upload that turns out too big, storing nothing', async () => {
    const before = await countRows(api, 'files');
    const chunks = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 4; i += 1) controller.enqueue(new Uint8Array(limit / 2));
        controller.close();
      },
    });
    const response = await fetch(`${api.baseUrl}/v1/files`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/octet-stream' },
      body: chunks,
      duplex: 'half',
    } as RequestInit & { duplex: 'half' });
    expect(response.status).toBe(413);
    expect(await countRows(api, 'files')).toBe(before);
  });

  it('answers 415 for an upload without a Content-Type', async () => {
    const response = await fetch(`${api.baseUrl}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${alice}` }, body: new Uint8Array([1, 2, 3]) });
    expect(response.status).toBe(415);
  });

  it('answers 415 for an upload with a Content-Encoding, rather than store the encoded bytes as the file', async () => {
    const before = await countRows(api, 'files');
    const response = await call(api, '/v1/files', { token: alice, body: gzipSync('hello'), headers: { 'content-type': 'text/plain', 'content-encoding': 'gzip' } });
    expect(response.status).toBe(415);
    expect(response.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(response.body.detail).toMatch(/Content-Encoding/);
    expect(await countRows(api, 'files')).toBe(before);
    const identity = await call(api, '/v1/files', { token: alice, body: 'hello', headers: { 'content-type': 'text/plain', 'content-encoding': 'identity' } });
    expect(identity.status).toBe(201);
  });

  it('answers 404 problem+json for a file whose bytes a delete removed between reading its row and opening them', async () => {
    const carol = await signUp(api);
    const uploaded = await call(api, '/v1/files', { token: carol.token, body: 'soon gone', headers: { 'content-type': 'text/plain' } });
    const id = String(uploaded.body.id);
    // What a concurrent DELETE leaves a download that has read the row: the bytes go after the row's delete commits.
    await rm(path.join(api.env.OBJECT_STORE_DIR, 'files', carol.userId, id));
    const download = await call(api, `/v1/files/${id}/content`, { token: carol.token });
    expect({ status: download.status, type: download.headers.get('content-type'), detail: download.body.detail }).toEqual({
      status: 404,
      type: expect.stringMatching(/^application\/problem\+json/),
      detail: `file ${id} not found`,
    });
  });

  it('hides another user\'s file and malformed ids behind 404', async () => {
    const uploaded = await call(api, '/v1/files', { token: alice, body: 'private', headers: { 'content-type': 'text/plain' } });
    const id = String(uploaded.body.id);
    expect((await call(api, `/v1/files/${id}`, { token: bob })).status).toBe(404);
    expect((await call(api, `/v1/files/${id}/content`, { token: bob })).status).toBe(404);
    expect((await call(api, '/v1/files/not-a-uuid', { token: alice })).status).toBe(404);
    expect((await call(api, `/v1/files/${id}`)).status).toBe(401);
  });
});

describe('uploads refused part way through their bodies', () => {
  let api: ApiFixture;
  let token: string;
  // One kept-alive connection, as a proxy in front of the API reuses one for many clients' requests.
  let agent: Agent;

  beforeAll(async () => {
    api = await startApi({ env: { UPLOAD_LIMIT_BYTES: String(64 * 1024), QUOTA_STORED_BYTES: '1000' } });
    token = (await signUp(api)).token;
  });
  beforeEach(() => {
    agent = new Agent({ keepAlive: true, maxSockets: 1 });
  });
  afterEach(() => {
    agent.destroy();
  });
  afterAll(async () => {
    await api.close();
  });

  /**
   * One request on the test's connection. Bodies are sent chunked: a Content-Length past a
   * limit would be refused before any of the body is read.
   */
  function send(method: string, path: string, headers: Record<string, string>, body?: string) {
    const { hostname, port } = new URL(api.baseUrl);
    return new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
      const request = httpRequest({ agent, host: hostname, port, method, path, headers: { authorization: `Bearer ${token}`, ...headers } });
      request.setTimeout(5_000, () => request.destroy(new Error('no answer within 5 s')));
      request.on('error', reject);
      request.on('response', (response) => {
        response.resume();
        response.on('end', () => resolve({ status: response.statusCode ?? 0, connection: response.headers.connection }));
      });
      request.end(body);
    });
  }

  it('closes the connection after refusing a malformed multipart body, so the next request on it is answered', async () => {
    // busboy gives up on a part header this long well before the rest of the body has arrived.
    const body = `--XX\r\nContent-Disposition: form-data; name="file"; filename="${'a'.repeat(20_000)}"\r\n\r\n${'z'.repeat(300_000)}\r\n--XX--\r\n`;
    const refused = await send('POST', '/v1/files', { 'content-type': 'multipart/form-data; boundary=XX', 'transfer-encoding': 'chunked' }, body);
    expect(refused).toEqual({ status: 400, connection: 'close' });
    expect((await send('GET', '/v1/auth/me', {})).status).toBe(200);
  });

  it('closes the connection after refusing a raw upload that grows past the quota, so the next request on it is answered', async () => {
    const refused = await send('POST', '/v1/files', { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' }, 'q'.repeat(300_000));
    expect(refused).toEqual({ status: 403, connection: 'close' });
    expect((await send('GET', '/v1/auth/me', {})).status).toBe(200);
  });
});

describe('uploads and downloads under way', () => {
  // Larger than what the kernel's socket buffers and the stream ahead of them take, so a client that reads nothing holds its download open.
  const size = 24 * 1024 * 1024;
  let api: ApiFixture;

  beforeAll(async () => {
    api = await startApi({ env: { UPLOAD_LIMIT_BYTES: String(size) } });
  });
  afterAll(async () => {
    await api.close();
  });

  /** A download whose client sends its request and then reads nothing; resolves once the answer has begun. */
  async function stalledDownload(fileId: string, token: string): Promise<Socket> {
    const { hostname, port } = new URL(api.baseUrl);
    const socket = connect(Number(port), hostname);
    socket.write(`GET /v1/files/${fileId}/content HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${token}\r\n\r\n`);
    await new Promise<void>((resolve, reject) => {
      socket.once('readable', resolve);
      socket.once('error', reject);
    });
    return socket;
  }

  /** An upload whose client sends its headers and a first byte, then nothing more. */
  function stalledUpload(token: string): Socket {
    const { hostname, port } = new URL(api.baseUrl);
    const socket = connect(Number(port), hostname);
    socket.on('error', () => undefined);
    socket.write(`POST /v1/files HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${size}\r\n\r\nx`);
    return socket;
  }

  async function partialObjects(): Promise<number> {
    const entries = await readdir(api.env.OBJECT_STORE_DIR, { recursive: true, withFileTypes: true }).catch(() => []);
    return entries.filter((entry) => entry.isFile() && entry.name.endsWith('.partial')).length;
  }

  async function eventually<T>(attempt: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
    const deadline = Date.now() + 10_000;
    let value = await attempt();
    while (!done(value) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      value = await attempt();
    }
    return value;
  }

  it('takes a few uploads of a user at once and answers one more 429 with Retry-After, reading none of it; other users\' uploads go on', async () => {
    const alice = await signUp(api);
    const bob = await signUp(api);
    const stalled = Array.from({ length: 4 }, () => stalledUpload(alice.token));
    try {
      expect(await eventually(partialObjects, (count) => count === 4)).toBe(4);
      const refused = await call(api, '/v1/files', { token: alice.token, body: 'one more', headers: { 'content-type': 'text/plain' } });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(refused.headers.get('retry-after')).toBe('5');
      expect(refused.body.detail).toMatch(/At most 4 uploads of one user/);
      expect((await call(api, '/v1/files', { token: bob.token, body: 'bob\'s', headers: { 'content-type': 'text/plain' } })).status).toBe(201);
    } finally {
      for (const socket of stalled) socket.destroy();
    }
    const again = await eventually(
      () => call(api, '/v1/files', { token: alice.token, body: 'now', headers: { 'content-type': 'text/plain' } }),
      (answer) => answer.status !== 429,
    );
    expect(again.status).toBe(201);
    expect(await eventually(partialObjects, (count) => count === 0)).toBe(0);
  });

  it('serves a user a few downloads at once and answers one more 429 with Retry-After; other users are served, and the user again once one ends', async () => {
    const alice = await signUp(api);
    const bob = await signUp(api);
    const upload = async (token: string) => String((await call(api, '/v1/files', { token, body: new Uint8Array(size), headers: { 'content-type': 'application/octet-stream' } })).body.id);
    const [aliceFile, bobFile] = [await upload(alice.token), await upload(bob.token)];
    const stalled = [];
    for (let n = 0; n < 4; n += 1) stalled.push(await stalledDownload(aliceFile, alice.token));
    try {
      const refused = await call(api, `/v1/files/${aliceFile}/content`, { token: alice.token });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(refused.headers.get('retry-after')).toBe('5');
      expect(refused.body.detail).toMatch(/At most 4 downloads of one user/);
      const bobs = await call(api, `/v1/files/${bobFile}/content`, { token: bob.token });
      expect([bobs.status, bobs.text.length]).toEqual([200, size]);
    } finally {
      for (const socket of stalled) socket.destroy();
    }
    // The server sees the connections go as their next write fails; then the user is served again.
    const deadline = Date.now() + 10_000;
    let again = await call(api, `/v1/files/${aliceFile}/content`, { token: alice.token });
    while (again.status === 429 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      again = await call(api, `/v1/files/${aliceFile}/content`, { token: alice.token });
    }
    expect(again.status).toBe(200);
  });
});
