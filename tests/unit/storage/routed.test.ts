/**
 * Uploads and job outputs in their own buckets, as the cloud has them: with S3_BUCKET and
 * S3_RESULTS_BUCKET the store sends every key the worker writes (`outputs/`, the file
 * service's job outputs, and `mail/`, the mail drop) to the results bucket, the only one the
 * worker may write to, and every other key to the uploads bucket, for each operation, under
 * the one S3_PREFIX the IAM grants stop at.
 */
import { Readable } from 'node:stream';
import { createObjectStore, JOB_OUTPUTS_PREFIX, UploadsAndResultsStore } from '../../../services/core/storage';
import { createMailDrop } from '../../../services/worker/mail-drop';
import { S3ObjectStore } from '../../../services/core/storage/s3';
import { startFakeS3, type FakeS3Server } from './fake-s3-server';

const CREDENTIALS = { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret-for-signing-only' };

describe('uploads and results in two buckets', () => {
  let s3: FakeS3Server;
  const saved: Record<string, string | undefined> = {};

  beforeAll(() => {
    for (const [k, v] of Object.entries(CREDENTIALS)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
  });
  afterAll(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  beforeEach(async () => {
    s3 = await startFakeS3(['uploads', 'results']);
  });
  afterEach(async () => {
    await s3.close();
  });

  const env = (results?: string) => ({
    OBJECT_STORE_DIR: '.data/objects',
    S3_BUCKET: 'uploads',
    S3_RESULTS_BUCKET: results,
    S3_PREFIX: 'files/',
    S3_REGION: 'eu-west-1',
    S3_ENDPOINT: s3.endpoint,
    S3_FORCE_PATH_STYLE: true,
  });

  it('puts, reads, sizes and deletes job outputs in the results bucket and uploads in the uploads bucket', async () => {
    const store = createObjectStore(env('results'));
    expect(store).toBeInstanceOf(UploadsAndResultsStore);
    const upload = 'files/owner-1/file-1';
    const output = `${JOB_OUTPUTS_PREFIX}job-1/out.gz`;
    await store.put(upload, Readable.from([Buffer.from('upload bytes')]));
    await store.put(output, Buffer.from('output bytes'));
    expect([...s3.objects.keys()].sort()).toEqual(['/results/files/outputs/job-1/out.gz', '/uploads/files/files/owner-1/file-1']);
    expect(await store.head(output)).toEqual({ size: 12 });
    let read = '';
    for await (const chunk of await store.get(upload)) read += String(chunk);
    expect(read).toBe('upload bytes');
    await store.delete(output);
    await store.delete(upload);
    expect(s3.objects.size).toBe(0);
    const paths = s3.requests.map((r) => `${r.method} ${r.path}`);
    expect(paths).toEqual(expect.arrayContaining(['HEAD /results/files/outputs/job-1/out.gz', 'GET /uploads/files/files/owner-1/file-1', 'DELETE /results/files/outputs/job-1/out.gz', 'DELETE /uploads/files/files/owner-1/file-1']));
    await store.check();
    // Both buckets checked, each by a listing under the prefix.
    const checks = s3.requests.filter((r) => r.method === 'GET' && /^\/(uploads|results)\/?$/.test(r.path));
    expect(checks.map((r) => `${r.path.replace(/\/$/, '')} ${r.query.get('prefix') ?? ''}`).sort()).toEqual(['/results files/', '/uploads files/']);
    for (const s of [(store as UploadsAndResultsStore).storeFor(upload), (store as UploadsAndResultsStore).storeFor(output)]) (s as S3ObjectStore).client.destroy();
  });

  it('puts the mail drop in the results bucket, which the worker may write to (it only reads uploads)', async () => {
    const store = createObjectStore(env('results'));
    await createMailDrop(store).write('job-1.eml', Buffer.from('Subject: hi\r\n\r\nhello'));
    expect([...s3.objects.keys()]).toEqual(['/results/files/mail/job-1.eml']);
    for (const key of ['mail/x', 'files/x']) ((store as UploadsAndResultsStore).storeFor(key) as S3ObjectStore).client.destroy();
  });

  it('keeps one bucket for both when S3_RESULTS_BUCKET is unset or the same', () => {
    for (const results of [undefined, 'uploads']) {
      const store = createObjectStore(env(results));
      expect(store).toBeInstanceOf(S3ObjectStore);
      (store as S3ObjectStore).client.destroy();
    }
  });

  it('refuses to pair stores of different drivers', () => {
    const fake = (driver: 'filesystem' | 's3') => ({ driver, put: jest.fn(), get: jest.fn(), head: jest.fn(), delete: jest.fn(), check: jest.fn() });
    expect(() => new UploadsAndResultsStore({ uploads: fake('s3'), results: fake('filesystem') })).toThrow(/same driver/);
  });
});
