import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createEngineFixture, queueSharedEntry, submission, statusOf, killWorkerChildren, spawnWorker, superviseWorkers, waitFor, type EngineFixture } from './fixture';

const WORKER_MAIN = 'services/worker/main.ts';
const WORKER_CHILD = 'tests/services/engine/worker-child.ts';

describe('job engine: worker processes', () => {
  let fx: EngineFixture;

  beforeEach(async () => {
    fx = await createEngineFixture();
  });
  afterEach(async () => {
    await killWorkerChildren();
    await fx?.close();
  });

  it('a worker SIGKILLed mid-job: another worker finishes the job exactly once, its output stored once', async () => {
    const file = await fx.core.files.upload({
      ownerId: fx.ownerId,
      name: 'words.txt',
      contentType: 'text/plain',
      body: Readable.from(Buffer.from('to be or not to be\n'.repeat(2_000))),
      maxBytes: 10_000_000,
    });
    const doomed = await spawnWorker(fx, WORKER_CHILD, { TEST_LINGER_AFTER_OUTPUT_MS: '60000' });
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'file.compress', input: { fileId: file.id } }));

    // Kill it after it wrote the output but before it reported success: the worst moment.
    await waitFor('the first run to store its output', async () => {
      const rows = await fx.query('SELECT id FROM files WHERE produced_by_job_id = $1', [job.id]);
      return rows.length === 1;
    });
    expect(await statusOf(fx, job.id)).toBe('running');
    doomed.kill('SIGKILL');
    expect(await doomed.exited).toEqual({ code: null, signal: 'SIGKILL' });

    await fx.startRunner();
    await waitFor('the job to succeed on the second worker', async () => (await statusOf(fx, job.id)) === 'succeeded', 30_000);

    const done = await fx.core.jobs.get(fx.ownerId, job.id);
    expect(done).toMatchObject({ attempts: 1, result: { format: 'gzip' } });
    const events = await fx.query<{ to_status: string; detail: string | null }>('SELECT to_status, detail FROM job_events WHERE job_id = $1 ORDER BY id', [job.id]);
    expect(events.filter((event) => event.to_status === 'succeeded')).toHaveLength(1);
    expect(events.map((event) => event.to_status)).toEqual(['queued', 'running', 'running', 'succeeded']);
    expect(events[2]?.detail).toBe('redelivered after an interrupted run');

    const outputs = await fx.query<{ id: string }>('SELECT id FROM files WHERE produced_by_job_id = $1', [job.id]);
    expect(outputs).toEqual([{ id: done.resultFileId }]);
    expect(await readdir(path.join(fx.objectDir, 'outputs', job.id))).toHaveLength(1);
  });

  it('SIGTERM drains: readiness fails first, the in-flight job finishes, the process exits 0', async () => {
    const worker = await spawnWorker(fx, WORKER_MAIN, { SHUTDOWN_GRACE_MS: '20000' });
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 3_000 } }));
    await waitFor('the job to run', async () => (await statusOf(fx, job.id)) === 'running');
    expect((await fetch(`http://127.0.0.1:${worker.metricsPort}/healthz`)).status).toBe(200);

    worker.kill('SIGTERM');
    await waitFor('readiness to fail', async () => (await fetch(`http://127.0.0.1:${worker.metricsPort}/readyz`)).status === 503);
    expect(await statusOf(fx, job.id)).toBe('running');

    expect(await worker.exited).toEqual({ code: 0, signal: null });
    expect(await fx.core.jobs.get(fx.ownerId, job.id)).toMatchObject({ status: 'succeeded', result: { sleptMs: 3_000 } });
    const heartbeats = await fx.core.redis.client.hgetall(`${fx.env.QUEUE_PREFIX}:workers:heartbeat`);
    expect(heartbeats).toEqual({});
  });

  it('SIGTERM past the grace period releases the job back to the queue, attempt not spent', async () => {
    const worker = await spawnWorker(fx, WORKER_MAIN, { SHUTDOWN_GRACE_MS: '300' });
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 2_500 } }));
    await waitFor('the job to run', async () => (await statusOf(fx, job.id)) === 'running');
    worker.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    expect(await fx.core.jobs.get(fx.ownerId, job.id)).toMatchObject({ status: 'queued', attempts: 0 });

    await fx.startRunner();
    await waitFor('another worker to finish it', async () => (await statusOf(fx, job.id)) === 'succeeded', 20_000);
    const events = await fx.query<{ to_status: string; detail: string | null }>('SELECT to_status, detail FROM job_events WHERE job_id = $1 ORDER BY id', [job.id]);
    expect(events.map((event) => event.to_status)).toEqual(['queued', 'running', 'queued', 'running', 'succeeded']);
    expect(events[2]?.detail).toBe('released at worker shutdown');
    expect(await fx.core.jobs.get(fx.ownerId, job.id)).toMatchObject({ attempts: 1 });
  });

  it('an unhandled rejection in the worker is logged, and the worker keeps running jobs', async () => {
    const worker = await spawnWorker(fx, WORKER_CHILD);
    const stray = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: 'stray rejection' } }));
    await waitFor('the job to succeed', async () => (await statusOf(fx, stray.job.id)) === 'succeeded');
    await waitFor('the rejection to be logged', async () => worker.output().includes('unhandled promise rejection; the worker keeps running'));
    const after = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: 'after' } }));
    await waitFor('the next job to succeed', async () => (await statusOf(fx, after.job.id)) === 'succeeded');
    expect((await fetch(`http://127.0.0.1:${worker.metricsPort}/healthz`)).status).toBe(200);
    expect(worker.output()).not.toMatch(/worker exited|failed to start/);
  });

  it('a job that kills its worker each time is delivered a bounded number of times, then dead-lettered; the jobs beside it finish at their first attempt', async () => {
    const scratch = await mkdtemp(path.join(os.tmpdir(), 'pk-crash-loop-'));
    const deliveryLog = path.join(scratch, 'deliveries');
    try {
      const innocents = await Promise.all(
        Array.from({ length: 3 }, () => fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 1_500 } }))),
      );
      const poison = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: 'poison' } }));
      await superviseWorkers(fx, WORKER_CHILD, 'the poison job to be dead-lettered', async () => (await statusOf(fx, poison.job.id)) === 'failed', { env: { TEST_DELIVERY_LOG: deliveryLog } });
      const dead = await fx.core.jobs.get(fx.ownerId, poison.job.id);
      expect(dead.status).toBe('failed');
      expect(dead.error).toMatch(/its run ended with its worker 3 times in a row/);
      const deliveries = readFileSync(deliveryLog, 'utf8').trim().split('\n');
      expect(deliveries.length).toBeLessThanOrEqual(3);

      const worker = await spawnWorker(fx, WORKER_CHILD);
      await waitFor('the jobs beside it to succeed', async () => {
        const statuses = await Promise.all(innocents.map(({ job }) => statusOf(fx, job.id)));
        return statuses.every((status) => status === 'succeeded');
      }, 30_000);
      for (const { job } of innocents) expect(await fx.core.jobs.get(fx.ownerId, job.id)).toMatchObject({ attempts: 1 });
      worker.kill('SIGTERM');
      await worker.exited;
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }, 180_000);

  it('a job that kills its worker from an entry it shares: the entry is split, the job dead-lettered after the same bounded runs, the jobs beside it finish at their first attempt', async () => {
    const scratch = await mkdtemp(path.join(os.tmpdir(), 'pk-crash-loop-shared-'));
    const deliveryLog = path.join(scratch, 'deliveries');
    try {
      const ids = await queueSharedEntry(fx, ['fine', 'fine', 'poison', 'fine', 'fine']);
      const poison = ids[2] as string;
      const innocents = ids.filter((id) => id !== poison);
      await superviseWorkers(fx, WORKER_CHILD, 'the poison job to be dead-lettered', async () => (await statusOf(fx, poison)) === 'failed', { env: { TEST_DELIVERY_LOG: deliveryLog } });
      const dead = await fx.core.jobs.get(fx.ownerId, poison);
      expect(dead.status).toBe('failed');
      expect(dead.error).toMatch(/its run ended with its worker 3 times in a row/);
      expect(readFileSync(deliveryLog, 'utf8').trim().split('\n').length).toBeLessThanOrEqual(3);

      const worker = await spawnWorker(fx, WORKER_CHILD);
      await waitFor('the jobs beside it to succeed', async () => (await Promise.all(innocents.map((id) => statusOf(fx, id)))).every((status) => status === 'succeeded'), 30_000);
      for (const id of innocents) expect(await fx.core.jobs.get(fx.ownerId, id)).toMatchObject({ attempts: 1, result: { payload: 'fine' } });
      worker.kill('SIGTERM');
      await worker.exited;
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }, 180_000);
});
