/**
 * The execution of one job by id, over PostgreSQL and without BullMQ: what the runner hands
 * each job id of a queue entry to. The rows are written directly and never enqueued, so
 * nothing but the executor touches them.
 */
import { randomUUID } from 'node:crypto';
import { echo } from '../../../services/contract/jobs';
import { TransitionWriter } from '../../../services/core/jobs/transitions';
import { JobExecutor } from '../../../services/worker/job-executor';
import { findProcessor } from '../../../services/worker/jobs';
import { createMailDrop } from '../../../services/worker/mail-drop';
import { createEngineFixture, type EngineFixture } from './fixture';

describe('JobExecutor over PostgreSQL', () => {
  let fx: EngineFixture;
  let transitions: TransitionWriter;
  let executor: JobExecutor;
  beforeAll(async () => {
    fx = await createEngineFixture();
    transitions = new TransitionWriter({ batchPool: fx.core.batchPool, generalPool: fx.core.generalPool, log: fx.log });
    executor = new JobExecutor({
      transitions,
      batchPool: fx.core.batchPool,
      generalPool: fx.core.generalPool,
      files: fx.core.files,
      mailDrop: createMailDrop(fx.core.store),
      processors: (type) => (type === 'fails' ? { definition: echo, run: async () => Promise.reject(new Error('always fails')) } : findProcessor(type)),
      log: fx.log,
      progressIntervalMs: 500,
    });
  });
  afterAll(async () => {
    await transitions?.close();
    await fx?.close();
  });

  async function queuedJob(type: string, input: unknown, maxAttempts = 3): Promise<string> {
    const id = randomUUID();
    await fx.query("INSERT INTO jobs (id, owner_id, type, input, status, max_attempts) VALUES ($1, $2, $3, $4, 'queued', $5)", [id, fx.ownerId, type, JSON.stringify(input), maxAttempts]);
    return id;
  }

  it('runs a queued job to succeeded, with its result stored', async () => {
    const id = await queuedJob('echo', { payload: { n: 1 } });
    await expect(executor.execute(id)).resolves.toEqual({ kind: 'done' });
    await expect(fx.one('SELECT status, attempts, result FROM jobs WHERE id = $1', [id])).resolves.toEqual({ status: 'succeeded', attempts: 1, result: { payload: { n: 1 } } });
  });

  it('queues a failed attempt again while attempts remain, and dead-letters the last', async () => {
    const id = await queuedJob('fails', {}, 2);
    const first = await executor.execute(id);
    expect(first).toMatchObject({ kind: 'again', row: { id }, delayMs: expect.any(Number) });
    await expect(fx.one('SELECT status, attempts, error FROM jobs WHERE id = $1', [id])).resolves.toEqual({ status: 'queued', attempts: 1, error: 'always fails' });
    await expect(executor.execute(id)).resolves.toEqual({ kind: 'dead', message: 'always fails' });
    await expect(fx.one('SELECT status, attempts FROM jobs WHERE id = $1', [id])).resolves.toEqual({ status: 'failed', attempts: 2 });
  });

  it('leaves a finished job as it is', async () => {
    const id = await queuedJob('echo', { payload: 'once' });
    await executor.execute(id);
    await expect(executor.execute(id)).resolves.toEqual({ kind: 'done' });
    const starts = await fx.query<{ to_status: string }>("SELECT to_status FROM job_events WHERE job_id = $1 AND to_status = 'running'", [id]);
    expect(starts).toHaveLength(1);
  });
});
