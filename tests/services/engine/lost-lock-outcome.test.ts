import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isTerminalStatus } from '../../../services/core/jobs/lifecycle';
import type { JobStatus } from '../../../services/contract';
import { createEngineFixture, killWorkerChildren, spawnWorker, statusOf, submission, waitFor, type EngineFixture } from './fixture';

const WORKER_CHILD = 'tests/services/engine/worker-child.ts';
/**
 * The first run holds its worker's loop well past the lock (FAST_STALL: 2 s), so the other
 * worker's stalled check hands the entry out again before the loop comes back; the second
 * run waits longer than the rest of that hold, so it is still running when the first run,
 * its loop back, reports its outcome.
 */
const PAYLOAD = 'first run blocks 8000 ms after 500 ms and fails; later runs wait 10000 ms';

/**
 * A run that holds its worker's event loop past the queue lock loses the entry to another
 * worker's stalled check; when its loop comes back, its processor may end before the lock
 * watch stops it, and it reports its outcome. That run no longer holds the job: the run that
 * does now decides how the job ends. Its outcome, written while the second run still ran, used
 * to apply (the same attempt, the job still running), dead-lettering a job whose live run
 * then succeeded and had its result refused.
 */
describe('job engine: the outcome of a run whose entry another worker took after its lock lapsed', () => {
  let fx: EngineFixture;
  let scratch: string;

  beforeEach(async () => {
    fx = await createEngineFixture();
    scratch = await mkdtemp(path.join(os.tmpdir(), 'pk-lost-lock-outcome-'));
  });
  afterEach(async () => {
    await killWorkerChildren();
    await fx?.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it('is refused: the job ends as the run holding its entry ends it, with one terminal move in its audit trail', async () => {
    const deliveryLog = path.join(scratch, 'deliveries');
    const env = { TEST_DELIVERY_LOG: deliveryLog };
    const workers = await Promise.all([spawnWorker(fx, WORKER_CHILD, env), spawnWorker(fx, WORKER_CHILD, env)]);
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: PAYLOAD }, maxAttempts: 1 }));
    const runs = () => readFileSync(deliveryLog, 'utf8').trim().split('\n').length;
    await waitFor('the other worker to run the job again', async () => runs() === 2, 20_000);
    // BullMQ refuses the first run's worker the entry once that run's outcome write was answered.
    await waitFor('the run that lost its lock to end', async () => workers.some((worker) => /(Lock mismatch|Missing lock) for job [^ ]+ Cmd moveToFinished/.test(worker.output())), 30_000);
    const finished = await waitFor('the job to finish', async () => {
      const status = (await statusOf(fx, job.id)) as JobStatus;
      return isTerminalStatus(status) && status;
    }, 30_000);

    expect(finished).toBe('succeeded');
    expect(await fx.core.jobs.get(fx.ownerId, job.id)).toMatchObject({ status: 'succeeded', result: { payload: PAYLOAD }, error: null, attempts: 1 });
    const trail = await fx.query<{ from_status: string | null; to_status: string }>('SELECT from_status, to_status FROM job_events WHERE job_id = $1 ORDER BY id', [job.id]);
    expect(trail).toEqual([
      { from_status: null, to_status: 'queued' },
      { from_status: 'queued', to_status: 'running' },
      { from_status: 'running', to_status: 'running' },
      { from_status: 'running', to_status: 'succeeded' },
    ]);
    expect(runs()).toBe(2);
  }, 120_000);
});
