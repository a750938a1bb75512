import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Readable } from 'node:stream';
import { Client } from 'pg';
import { fileChecksum } from '../../../services/contract';
import { createFileService } from '../../../services/core/files/service';
import type { FileService } from '../../../services/core/files/types';
import { MAX_DEFERRALS } from '../../../services/core/jobs/lifecycle';
import { S3ObjectStore } from '../../../services/core/storage/s3';
import { infrastructureFailure } from '../../../services/worker/infrastructure-failure';
import { findProcessor } from '../../../services/worker/jobs';
import checksum from '../../../services/worker/jobs/file-checksum';
import { defineProcessor, type Processor } from '../../../services/worker/processor';
import { startPostgres, type PostgresServer } from '../../harness/postgres';
import { useSharedServices } from '../../harness/shared';
import { startFakeS3, type FakeS3Server } from '../../unit/storage/fake-s3-server';
import { createEngineFixture, submission, statusOf, waitFor, type EngineFixture } from './fixture';

const CONTENT = Buffer.from('the bytes of an innocent file\n');
const DIGEST = createHash('sha256').update(CONTENT).digest('hex');

async function uploadTo(files: FileService, ownerId: string, name: string): Promise<string> {
  const file = await files.upload({ ownerId, name, contentType: 'text/plain', body: Readable.from([CONTENT]), maxBytes: 1_000 });
  return file.id;
}

async function auditTrail(fx: EngineFixture, jobId: string): Promise<{ from_status: string | null; to_status: string; attempt: number; detail: string | null }[]> {
  return fx.query('SELECT from_status, to_status, attempt, detail FROM job_events WHERE job_id = $1 ORDER BY id', [jobId]);
}

describe('job engine: an attempt that failed on the platform\'s infrastructure is not charged', () => {
  let postgres: PostgresServer | undefined;
  let s3: FakeS3Server | undefined;
  let store: S3ObjectStore | undefined;
  let fx: EngineFixture | undefined;

  afterEach(async () => {
    await fx?.close();
    fx = undefined;
    store?.client.destroy();
    store = undefined;
    await s3?.close();
    s3 = undefined;
    await postgres?.destroy();
    postgres = undefined;
  });

  /** An engine fixture whose files live on a fake S3 server (its faults set by each test), through the S3 driver. */
  async function onFakeS3(): Promise<{ current: EngineFixture; fakeS3: FakeS3Server; objects: S3ObjectStore; files: FileService }> {
    s3 = await startFakeS3(['platform-bucket']);
    store = new S3ObjectStore({
      bucket: 'platform-bucket',
      region: 'eu-west-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-for-signing-only' },
    });
    fx = await createEngineFixture();
    return { current: fx, fakeS3: s3, objects: store, files: createFileService({ generalPool: fx.core.generalPool, store, log: fx.log, quota: { files: fx.env.QUOTA_FILES, bytes: fx.env.QUOTA_STORED_BYTES } }) };
  }

  it('PostgreSQL restarted while a job reads its file: the job is deferred, its state write waits for the server, and it succeeds on its only attempt', async () => {
    postgres = await startPostgres();
    const shared = await useSharedServices();
    fx = await createEngineFixture({ servers: { databaseUrl: await postgres.createDatabase(), redisUrl: shared.redisUrl, redisPrefix: `{t-${randomUUID()}}` } });
    const current = fx;
    const fileId = await uploadTo(current.core.files, current.ownerId, 'innocent.txt');
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let runs = 0;
    // The real file.checksum, held before it looks its file up until the server is down.
    const gated = defineProcessor(fileChecksum, async (context) => {
      runs += 1;
      if (runs === 1) await gate;
      const { result } = await checksum.run(context);
      return { result };
    });
    await current.startRunner({}, { processors: (type) => (type === 'file.checksum' ? (gated as unknown as Processor) : findProcessor(type)) });
    const { job } = await current.core.jobs.submit(submission({ ownerId: current.ownerId, type: 'file.checksum', input: { fileId }, maxAttempts: 1 }));
    await waitFor('the job to run', async () => (await statusOf(current, job.id)) === 'running');

    await postgres.stop();
    open();
    // The file lookup fails while the server is down; the deferral waits for it as a finished job's result would.
    await delay(3_000);
    expect(runs).toBe(1);
    await postgres.start();

    await waitFor('the job to succeed', async () => (await statusOf(current, job.id)) === 'succeeded', 30_000);
    expect(await current.core.jobs.get(current.ownerId, job.id)).toMatchObject({ attempts: 1, result: { algorithm: 'sha256', digest: DIGEST } });
    expect(runs).toBe(2);
    const trail = await auditTrail(current, job.id);
    expect(trail.map(({ from_status, to_status, attempt }) => [from_status, to_status, attempt])).toEqual([
      [null, 'queued', 0],
      ['queued', 'running', 1],
      ['running', 'queued', 1],
      ['queued', 'running', 1],
      ['running', 'succeeded', 1],
    ]);
    expect(trail[2]?.detail).toMatch(/^attempt 1 not charged: it failed on (PostgreSQL|a connection to a platform service), not on the job \(.+\); deferral 1 of \d+, running again in \d+ ms$/);
    expect(await current.one('SELECT deferrals FROM jobs WHERE id = $1', [job.id])).toEqual({ deferrals: 1 });
  }, 90_000);

  it('PostgreSQL stalled past the statement timeout under a statement the job had in flight: the job is deferred, and succeeds on its only attempt', async () => {
    postgres = await startPostgres();
    const shared = await useSharedServices();
    // The worker's statement bounds (15 s on the server, 20 s for the answer), not the api's the fixture has by default.
    fx = await createEngineFixture({ servers: { databaseUrl: await postgres.createDatabase(), redisUrl: shared.redisUrl, redisPrefix: `{t-${randomUUID()}}` }, core: { service: 'worker' } });
    const current = fx;
    const fileId = await uploadTo(current.core.files, current.ownerId, 'innocent.txt');
    let runs = 0;
    // The real file.checksum, its first run with a statement on the worker's pool that is still running when the server stops.
    const stalled = defineProcessor(fileChecksum, async (context) => {
      runs += 1;
      if (runs === 1) await current.core.generalPool.query("SELECT pg_sleep(3), 'stalled statement'");
      const { result } = await checksum.run(context);
      return { result };
    });
    await current.startRunner({}, { processors: (type) => (type === 'file.checksum' ? (stalled as unknown as Processor) : findProcessor(type)) });
    const { job } = await current.core.jobs.submit(submission({ ownerId: current.ownerId, type: 'file.checksum', input: { fileId }, maxAttempts: 1 }));
    await waitFor('the statement to run', async () => (await current.query("SELECT 1 FROM pg_stat_activity WHERE query LIKE '%''stalled statement''%' AND state = 'active' AND pid <> pg_backend_pid()")).length === 1, 10_000, 20);

    // A stall (SIGSTOP: a frozen host, storage that stopped answering) longer than the worker's
    // statement_timeout (15 s) and shorter than its wait for an answer (20 s): the server's own
    // timeout fires as it resumes, and the statement fails with 57014 rather than a connection error.
    postgres.pause();
    await delay(17_000);
    postgres.resume();

    await waitFor('the job to finish', async () => ['succeeded', 'failed'].includes(await statusOf(current, job.id)) || undefined, 30_000);
    expect(await current.core.jobs.get(current.ownerId, job.id)).toMatchObject({ status: 'succeeded', attempts: 1, result: { algorithm: 'sha256', digest: DIGEST } });
    const deferrals = (await auditTrail(current, job.id)).filter((event) => event.to_status === 'queued' && event.from_status === 'running');
    expect(deferrals.map((event) => event.detail)).toEqual([
      expect.stringMatching(/^attempt 1 not charged: it failed on PostgreSQL, not on the job \(canceling statement due to statement timeout\); deferral 1 of /),
    ]);
  }, 90_000);

  it('the object store answering 503 for a while: the job is deferred until it answers, and succeeds on its only attempt', async () => {
    const { current, fakeS3, objects, files } = await onFakeS3();
    const fileId = await uploadTo(files, current.ownerId, 'innocent.txt');
    // Three reads fail: all of the first run's (the SDK's own three attempts).
    let failing = 3;
    fakeS3.fault = (request) => (request.method === 'GET' && failing-- > 0 ? { status: 503, code: 'ServiceUnavailable' } : undefined);
    await current.startRunner({}, { files, store: objects });
    const { job } = await current.core.jobs.submit(submission({ ownerId: current.ownerId, type: 'file.checksum', input: { fileId }, maxAttempts: 1 }));

    await waitFor('the job to finish', async () => ['succeeded', 'failed'].includes(await statusOf(current, job.id)) || undefined, 30_000);
    expect(await current.core.jobs.get(current.ownerId, job.id)).toMatchObject({ status: 'succeeded', attempts: 1, result: { digest: DIGEST } });
    const deferrals = (await auditTrail(current, job.id)).filter((event) => event.to_status === 'queued' && event.from_status === 'running');
    expect(deferrals.map((event) => event.detail)).toEqual([
      expect.stringMatching(/^attempt 1 not charged: it failed on the object store, not on the job \(ServiceUnavailable\); deferral 1 of /),
    ]);
  }, 60_000);

  it('a job that meets an infrastructure failure on every run is dead-lettered after its deferrals, and the job beside it is not', async () => {
    const { current, fakeS3, objects, files } = await onFakeS3();
    const provoking = await uploadTo(files, current.ownerId, 'provoking.txt');
    const innocent = await uploadTo(files, current.ownerId, 'innocent.txt');
    const provokingKey = `/platform-bucket/files/${current.ownerId}/${provoking}`;
    fakeS3.fault = (request) => (request.method === 'GET' && request.path === provokingKey ? { status: 503, code: 'ServiceUnavailable' } : undefined);
    // No backoff between runs, so the bound is reached in seconds rather than the hour it covers.
    const noBackoff = defineProcessor({ ...fileChecksum, retry: { attempts: 3, backoffMs: 0 } }, async (context) => ({ result: (await checksum.run(context)).result }));
    await current.startRunner({}, { files, store: objects, processors: (type) => (type === 'file.checksum' ? (noBackoff as unknown as Processor) : findProcessor(type)) });
    const [bad, good] = await Promise.all(
      [provoking, innocent].map(async (fileId) => (await current.core.jobs.submit(submission({ ownerId: current.ownerId, type: 'file.checksum', input: { fileId } }))).job),
    );

    await waitFor('the provoking job to be dead-lettered', async () => (await statusOf(current, bad!.id)) === 'failed', 90_000, 200);
    const dead = await current.core.jobs.get(current.ownerId, bad!.id);
    expect(dead.attempts).toBe(1);
    expect(dead.error).toBe(
      `its runs failed on the platform's infrastructure ${MAX_DEFERRALS + 1} times, the last on the object store (ServiceUnavailable); ` +
        `the first ${MAX_DEFERRALS} were deferred without charging an attempt, and a job that meets such a failure on every run is not delivered again`,
    );
    const trail = await auditTrail(current, bad!.id);
    expect(trail.filter((event) => event.detail?.includes('not charged'))).toHaveLength(MAX_DEFERRALS);
    expect(trail.at(-1)).toMatchObject({ from_status: 'running', to_status: 'failed', attempt: 1, detail: dead.error });
    expect(await current.one('SELECT deferrals FROM jobs WHERE id = $1', [bad!.id])).toEqual({ deferrals: MAX_DEFERRALS });
    expect(await current.core.jobs.get(current.ownerId, good!.id)).toMatchObject({ status: 'succeeded', attempts: 1, result: { digest: DIGEST } });
  }, 120_000);
});

describe('infrastructureFailure over a real PostgreSQL', () => {
  it('a query whose backend is terminated (pg_terminate_backend, as at a restart) fails with 57P01: PostgreSQL\'s, not the job\'s', async () => {
    const { databaseUrl } = await useSharedServices();
    const name = `victim-${randomUUID()}`;
    const victim = new Client({ connectionString: databaseUrl, application_name: name });
    victim.on('error', () => undefined);
    const admin = new Client({ connectionString: databaseUrl });
    await Promise.all([victim.connect(), admin.connect()]);
    try {
      const sleeping = victim.query('SELECT pg_sleep(30)').then(
        () => undefined,
        (error: unknown) => error,
      );
      await waitFor('the query to run', async () => {
        const { rows } = await admin.query("SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'", [name]);
        return rows.length === 1;
      });
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [name]);
      const terminated = await sleeping;
      expect(terminated).toMatchObject({ code: '57P01' });
      expect(infrastructureFailure(terminated)).toBe('PostgreSQL');
      const after = await victim.query('SELECT 1').then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(infrastructureFailure(after)).toBe('PostgreSQL');
    } finally {
      await Promise.all([victim.end().catch(() => undefined), admin.end()]);
    }
  });
});
