/**
 * A file job stopped (cancelled, timed out, released at shutdown) while it reads its file:
 * the abort ends the read with an error, and a stream error that no listener hears ends the
 * worker process, and with it every job the worker runs. This runs the real worker process
 * and cancels as an owner would: the worker must stop the job and go on working.
 */
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createEngineFixture, killWorkerChildren, spawnWorker, statusOf, submission, waitFor, type EngineFixture } from './fixture';

const WORKER_CHILD = 'tests/services/engine/worker-child.ts';

describe('job engine: stopping a file job while it reads its file', () => {
  let fx: EngineFixture;
  let logDir: string;

  beforeEach(async () => {
    fx = await createEngineFixture();
    logDir = await mkdtemp(path.join(os.tmpdir(), 'pk-file-reads-'));
  });
  afterEach(async () => {
    await killWorkerChildren();
    await fx?.close();
    await rm(logDir, { recursive: true, force: true });
  });

  it('csv.summary cancelled while it waits for more of its file: the job stops once, the worker goes on', async () => {
    const readsLog = path.join(logDir, 'stalled-reads.log');
    const worker = await spawnWorker(fx, WORKER_CHILD, { TEST_STALL_CSV_READS_LOG: readsLog });
    const file = await fx.core.files.upload({
      ownerId: fx.ownerId,
      name: 'rows.csv',
      contentType: 'text/csv',
      body: Readable.from(Buffer.from(`a,b\n${'1,2\n'.repeat(50_000)}`)),
      maxBytes: 10_000_000,
    });
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'csv.summary', input: { fileId: file.id } }));
    await waitFor('the job to wait for more of its file', async () => (await readFile(readsLog, 'utf8')).includes(job.id));
    // Its start is written with the worker's next batch of writes: a cancel before that finds the job still queued.
    await waitFor('the run to be recorded', async () => (await statusOf(fx, job.id)) === 'running');

    await fx.core.jobs.cancel(fx.ownerId, job.id);

    // The worker goes on: a job submitted after the cancel succeeds on it, and it never exits meanwhile.
    const { job: next } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: 'after the cancel' } }));
    const exited = worker.exited.then(({ code, signal }) => {
      throw new Error(`the worker exited (${code ?? signal}) instead of going on:\n${worker.output()}`);
    });
    await Promise.race([exited, waitFor('the next job to succeed', async () => (await statusOf(fx, next.id)) === 'succeeded', 30_000)]);

    const events = await fx.query<{ to_status: string }>('SELECT to_status FROM job_events WHERE job_id = $1 ORDER BY id', [job.id]);
    expect(events.map((event) => event.to_status)).toEqual(['queued', 'running', 'cancelled']);
    expect(await statusOf(fx, job.id)).toBe('cancelled');
  });
});
