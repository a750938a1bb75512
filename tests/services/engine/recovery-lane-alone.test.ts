import { createEngineFixture, killWorkerChildren, queueAfterCrashes, spawnWorker, statusOf, submission, superviseWorkers, waitFor, type EngineFixture } from './fixture';

const WORKER_CHILD = 'tests/services/engine/worker-child.ts';
/** STALL_SETTINGS' maxStalledCount: a job whose runs ended with their worker this often is on its last chance. */
const LAST_CHANCE = 2;

/**
 * A job on its last chance (one more run ending with its worker dead-letters it) runs alone
 * in its worker process: were another job to kill the process beside it, that run would be
 * charged to it, and one user's bad jobs would dead-letter another user's good one.
 */
describe('job engine: a job on its last chance runs alone in its worker', () => {
  let fx: EngineFixture;

  beforeEach(async () => {
    fx = await createEngineFixture();
  });
  afterEach(async () => {
    await killWorkerChildren();
    await fx?.close();
  });

  const settled = (...jobIds: string[]) => async () => (await Promise.all(jobIds.map((id) => statusOf(fx, id)))).every((status) => status === 'succeeded' || status === 'failed');

  it('takes no other job while it runs: a job that kills the worker waits until it is done, and is dead-lettered alone', async () => {
    const lastChance = await queueAfterCrashes(fx, 'sleep', { ms: 3_000 }, LAST_CHANCE);
    const worker = await spawnWorker(fx, WORKER_CHILD);
    await waitFor('the job on its last chance to run', async () => (await statusOf(fx, lastChance)) === 'running');
    const poison = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: 'poison' } }));
    await Promise.race([worker.exited, waitFor('both jobs to settle', settled(lastChance, poison.job.id), 30_000).catch(() => undefined)]);
    await superviseWorkers(fx, WORKER_CHILD, 'both jobs to settle', settled(lastChance, poison.job.id));

    expect(await fx.core.jobs.get(fx.ownerId, lastChance)).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(await fx.core.jobs.get(fx.ownerId, poison.job.id)).toMatchObject({ status: 'failed', error: expect.stringMatching(/ended with its worker 3 times/) });
  }, 240_000);

  it('waits for the jobs already running beside it; a crash of theirs while it waits is not charged to it', async () => {
    const poison = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: 'poison after 2500 ms' } }));
    const worker = await spawnWorker(fx, WORKER_CHILD);
    await waitFor('the poison to run', async () => (await statusOf(fx, poison.job.id)) === 'running');
    const lastChance = await queueAfterCrashes(fx, 'sleep', { ms: 5_000 }, LAST_CHANCE);
    await Promise.race([worker.exited, waitFor('both jobs to settle', settled(lastChance, poison.job.id), 30_000).catch(() => undefined)]);
    await superviseWorkers(fx, WORKER_CHILD, 'both jobs to settle', settled(lastChance, poison.job.id));

    expect(await fx.core.jobs.get(fx.ownerId, lastChance)).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(await fx.core.jobs.get(fx.ownerId, poison.job.id)).toMatchObject({ status: 'failed', error: expect.stringMatching(/ended with its worker 3 times/) });
    expect(worker.output()).toMatch(/waits for the jobs running beside it/);
  }, 240_000);
});
