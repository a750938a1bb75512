import { createHash, randomBytes } from 'node:crypto';
import net, { type AddressInfo, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { createObjectStore } from '../../../services/core/storage';
import { InvalidObjectKeyError, ObjectNotFoundError, ObjectTooLargeError } from '../../../services/core/storage/object-store';
import { S3ObjectStore } from '../../../services/core/storage/s3';
import { startFakeS3, type FakeS3Server } from './fake-s3-server';

const BUCKET = 'platform-bucket';
const MiB = 1024 * 1024;

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A body in 64 KiB chunks, the way a socket or a file delivers one. */
function chunked(data: Buffer): Readable {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += 64 * 1024) chunks.push(data.subarray(offset, offset + 64 * 1024));
  return Readable.from(chunks);
}

describe('S3ObjectStore against an S3-speaking HTTP server', () => {
  let s3: FakeS3Server;
  let store: S3ObjectStore;

  beforeEach(async () => {
    s3 = await startFakeS3([BUCKET]);
    store = new S3ObjectStore({
      bucket: BUCKET,
      prefix: '/tenant-a/',
      region: 'eu-west-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-for-signing-only' },
    });
  });

  afterEach(async () => {
    store.client.destroy();
    await s3.close();
  });

  it('puts a small body as one signed PutObject at bucket/prefix/key with its content type and length', async () => {
    const data = Buffer.from('hello, object store');
    const stored = await store.put('files/owner-1/file-1', data, { contentType: 'text/plain; charset=utf-8' });

    expect(stored).toEqual({ key: 'files/owner-1/file-1', size: data.length, sha256: sha256(data) });
    expect(s3.requests).toHaveLength(1);
    const [request] = s3.requests;
    expect(request).toMatchObject({ method: 'PUT', path: `/${BUCKET}/tenant-a/files/owner-1/file-1` });
    expect(request?.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(request?.headers['content-length']).toBe(String(data.length));
    expect(request?.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/s3\/aws4_request/);
    expect(request?.body.equals(data)).toBe(true);
  });

  it('streams a big body as a multipart upload: create, one PUT per part, complete', async () => {
    const data = randomBytes(11 * MiB);
    const stored = await store.put('outputs/job-1/big.bin', chunked(data), { contentType: 'application/octet-stream' });

    expect(stored).toEqual({ key: 'outputs/job-1/big.bin', size: data.length, sha256: sha256(data) });
    const path = `/${BUCKET}/tenant-a/outputs/job-1/big.bin`;
    const calls = s3.requests.map((request) => ({
      method: request.method,
      path: request.path,
      uploads: request.query.has('uploads'),
      partNumber: request.query.get('partNumber'),
      length: request.body.length,
    }));
    expect(calls[0]).toEqual({ method: 'POST', path, uploads: true, partNumber: null, length: 0 });
    const parts = calls.filter((call) => call.partNumber !== null).sort((a, b) => Number(a.partNumber) - Number(b.partNumber));
    expect(parts.map((part) => [part.method, part.partNumber, part.length])).toEqual([
      ['PUT', '1', 5 * MiB],
      ['PUT', '2', 5 * MiB],
      ['PUT', '3', MiB],
    ]);
    expect(calls.at(-1)).toMatchObject({ method: 'POST', path, uploads: false, partNumber: null });
    expect(s3.requests[0]?.headers['content-type']).toBe('application/octet-stream');
    expect(s3.objects.get(path)?.body.equals(data)).toBe(true);
    expect(s3.openUploads.size).toBe(0);
  });

  it('rejects a small over-limit body before sending anything', async () => {
    await expect(store.put('files/o/too-big', Buffer.alloc(1_000), { maxBytes: 999 })).rejects.toBeInstanceOf(ObjectTooLargeError);
    expect(s3.requests).toEqual([]);
  });

  it('aborts the multipart upload when a big body goes over the limit mid-stream, leaving no object', async () => {
    const data = randomBytes(12 * MiB);
    await expect(store.put('files/o/huge', chunked(data), { maxBytes: 7 * MiB })).rejects.toBeInstanceOf(ObjectTooLargeError);

    expect(s3.objects.size).toBe(0);
    expect(s3.openUploads.size).toBe(0);
    const created = s3.requests.filter((request) => request.query.has('uploads'));
    const aborted = s3.requests.filter((request) => request.method === 'DELETE' && request.query.has('uploadId'));
    expect(aborted).toHaveLength(created.length);
    expect(s3.requests.some((request) => request.method === 'POST' && request.query.has('uploadId'))).toBe(false);
  });

  it('aborts the multipart upload when the signal fires mid-stream, leaving no object', async () => {
    const controller = new AbortController();
    let partOneSent!: () => void;
    const sixMiBRead = new Promise<void>((resolve) => (partOneSent = resolve));
    const stalled = Readable.from(
      (async function* () {
        for (let sent = 0; sent < 6 * MiB; sent += MiB) yield randomBytes(MiB);
        partOneSent();
        // The rest never comes: a client that stopped sending.
        await new Promise(() => undefined);
      })(),
    );
    const writing = store.put('files/o/cancelled', stalled, { signal: controller.signal });
    await sixMiBRead;
    controller.abort();
    await expect(writing).rejects.toMatchObject({ name: 'AbortError' });
    expect(s3.objects.size).toBe(0);
    expect(s3.openUploads.size).toBe(0);
  });

  it('gets an object and maps NoSuchKey (404) to ObjectNotFoundError', async () => {
    await store.put('files/o/present', Buffer.from('bytes'));
    const body = await store.get('files/o/present');
    expect(Buffer.concat(await body.toArray()).toString()).toBe('bytes');
    expect(s3.requests.at(-1)).toMatchObject({ method: 'GET', path: `/${BUCKET}/tenant-a/files/o/present` });

    await expect(store.get('files/o/absent')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(store.get('files/o/absent')).rejects.toMatchObject({ key: 'files/o/absent' });
  });

  it('heads objects (size, or undefined when missing) and deletes them', async () => {
    await store.put('k/one', Buffer.from('12345'));
    expect(await store.head('k/one')).toEqual({ size: 5 });
    expect(await store.head('k/missing')).toBeUndefined();

    await store.delete('k/one');
    expect(s3.requests.at(-1)).toMatchObject({ method: 'DELETE', path: `/${BUCKET}/tenant-a/k/one` });
    expect(await store.head('k/one')).toBeUndefined();
  });

  it('checks the bucket by listing one key under its prefix, what a workload limited to that prefix may do, and surfaces a missing bucket instead of calling it a missing object', async () => {
    await store.check();
    const listed = s3.requests.at(-1)!;
    expect(listed).toMatchObject({ method: 'GET', path: expect.stringMatching(new RegExp(`^/${BUCKET}/?$`)) });
    // The cloud's grants allow ListBucket only where s3:prefix is under the workloads' prefix (platform/identity).
    expect(Object.fromEntries(listed.query)).toMatchObject({ 'list-type': '2', prefix: 'tenant-a/', 'max-keys': '1' });

    const wrongBucket = new S3ObjectStore({
      bucket: 'no-such-bucket',
      region: 'eu-west-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-for-signing-only' },
    });
    try {
      await expect(wrongBucket.check()).rejects.toThrow();
      const error = await wrongBucket.get('files/x').catch((caught: unknown) => caught);
      expect(error).not.toBeInstanceOf(ObjectNotFoundError);
      expect(error).toMatchObject({ name: 'NoSuchBucket' });
    } finally {
      wrongBucket.client.destroy();
    }
  });

  it('validates keys before any request', async () => {
    await expect(store.put('../escape', Buffer.from('x'))).rejects.toBeInstanceOf(InvalidObjectKeyError);
    await expect(store.get('/absolute')).rejects.toBeInstanceOf(InvalidObjectKeyError);
    expect(s3.requests).toEqual([]);
  });

  it('stores keys without a prefix at the bucket root', async () => {
    const unprefixed = new S3ObjectStore({
      bucket: BUCKET,
      region: 'us-east-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-for-signing-only' },
    });
    try {
      await unprefixed.put('files/a', Buffer.from('x'));
      expect(s3.requests.at(-1)).toMatchObject({ method: 'PUT', path: `/${BUCKET}/files/a` });
    } finally {
      unprefixed.client.destroy();
    }
  });
});

describe('createObjectStore', () => {
  const base = { OBJECT_STORE_DIR: '.data/objects', S3_PREFIX: '', S3_REGION: 'us-east-1', S3_FORCE_PATH_STYLE: false } as const;

  it('uses the filesystem when S3_BUCKET is unset', () => {
    expect(createObjectStore({ ...base, S3_BUCKET: undefined, S3_ENDPOINT: undefined }).driver).toBe('filesystem');
  });

  it('uses S3 when S3_BUCKET is set', () => {
    const store = createObjectStore({ ...base, S3_BUCKET: 'uploads', S3_ENDPOINT: 'http://127.0.0.1:9000' });
    expect(store.driver).toBe('s3');
    (store as S3ObjectStore).client.destroy();
  });
});

describe('S3ObjectStore against a server that never answers', () => {
  it('fails a call once no byte has moved for requestTimeoutMs, instead of hanging', async () => {
    const sockets = new Set<Socket>();
    const silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    const store = new S3ObjectStore({
      bucket: BUCKET,
      region: 'eu-west-1',
      endpoint: `http://127.0.0.1:${port}`,
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-for-signing-only' },
      requestTimeoutMs: 200,
    });
    try {
      await expect(store.get('files/owner-1/file-1')).rejects.toThrow(/timed? ?out|timeout/i);
    } finally {
      store.client.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});
