import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createEngineFixture, killWorkerChildren, spawnWorker, waitFor, type EngineFixture } from './fixture';

const WORKER_MAIN = 'services/worker/main.ts';
const WORKER_CHILD = 'tests/services/engine/worker-child.ts';

async function statusOf(fx: EngineFixture, jobId: string): Promise<string> {
  return (await fx.core.jobs.get(fx.ownerId, jobId)).status;
}

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
    const { job } = await fx.core.jobs.submit({ ownerId: fx.ownerId, type: 'file.compress', input: { fileId: file.id } });

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
    const { job } = await fx.core.jobs.submit({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 3_000 } });
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
    const { job } = await fx.core.jobs.submit({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 2_500 } });
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
});
