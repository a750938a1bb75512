/**
 * The execution of one job by id, over PostgreSQL and without BullMQ: what the runner hands
 * each job id of a queue entry to. The rows are written directly and never enqueued, so
 * nothing but the executor touches them.
 */
import { randomUUID } from 'node:crypto';
import { DEFAULT_WORKER_FILE_MEMORY_BUDGET_BYTES, DEFAULT_WORKER_INPUT_BUDGET_BYTES } from '../../../services/contract';
import { echo } from '../../../services/contract/jobs';
import { applyTransitions, INLINE_INPUT_BYTES } from '../../../services/core/db/jobs';
import { mergeTransitions, TransitionWriter, type WorkerTransition } from '../../../services/core/jobs/transitions';
import { JobExecutor, type JobExecutorOptions } from '../../../services/worker/job-executor';
import { findProcessor } from '../../../services/worker/jobs';
import { createMailDrop } from '../../../services/worker/mail-drop';
import { MemoryBudget } from '../../../services/core/memory-budget';
import { createEngineFixture, waitFor, waitForRowLockWait, type EngineFixture } from './fixture';

describe('JobExecutor over PostgreSQL', () => {
  let fx: EngineFixture;
  let transitions: TransitionWriter;
  let executor: JobExecutor;
  let executorOptions: JobExecutorOptions;
  beforeAll(async () => {
    fx = await createEngineFixture();
    transitions = new TransitionWriter({ batchPool: fx.core.batchPool, generalPool: fx.core.generalPool, log: fx.log });
    executorOptions = {
      transitions,
      batchPool: fx.core.batchPool,
      generalPool: fx.core.generalPool,
      files: fx.core.files,
      mailDrop: createMailDrop(fx.core.store),
      processors: (type) => (type === 'fails' ? { definition: echo, run: async () => Promise.reject(new Error('always fails')) } : findProcessor(type)),
      log: fx.log,
      progressIntervalMs: 500,
      inputBudget: new MemoryBudget(DEFAULT_WORKER_INPUT_BUDGET_BYTES),
      fileMemoryBudget: new MemoryBudget(DEFAULT_WORKER_FILE_MEMORY_BUDGET_BYTES),
    };
    executor = new JobExecutor(executorOptions);
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

  it('reads and runs large inputs only while the input budget has room, small ones with the batch, each with its whole result', async () => {
    let running = 0;
    const peak = { large: 0, small: 0 };
    const echoProcessor = findProcessor('echo');
    if (!echoProcessor) throw new Error('no echo processor');
    const budgeted = new JobExecutor({
      transitions,
      batchPool: fx.core.batchPool,
      generalPool: fx.core.generalPool,
      files: fx.core.files,
      mailDrop: createMailDrop(fx.core.store),
      // Room for one 600 KB input at a time.
      inputBudget: new MemoryBudget(1024 * 1024),
      fileMemoryBudget: new MemoryBudget(DEFAULT_WORKER_FILE_MEMORY_BUDGET_BYTES),
      processors: () => ({
        definition: echoProcessor.definition,
        run: async (context) => {
          running += 1;
          const size = JSON.stringify(context.input).length > INLINE_INPUT_BYTES ? 'large' : 'small';
          peak[size] = Math.max(peak[size], running);
          await new Promise((resolve) => setTimeout(resolve, 20));
          running -= 1;
          return echoProcessor.run(context);
        },
      }),
      log: fx.log,
      progressIntervalMs: 500,
    });
    const large = await Promise.all(Array.from({ length: 5 }, (_, index) => queuedJob('echo', { payload: `${index}`.repeat(600 * 1024) })));
    const small = await Promise.all(Array.from({ length: 5 }, (_, index) => queuedJob('echo', { payload: index })));
    await expect(Promise.all(large.map((id) => budgeted.execute(id)))).resolves.toEqual(large.map(() => ({ kind: 'done' })));
    await expect(Promise.all(small.map((id) => budgeted.execute(id)))).resolves.toEqual(small.map(() => ({ kind: 'done' })));
    expect(peak).toEqual({ large: 1, small: 5 });
    const rows = await fx.query<{ id: string; status: string; result_length: number }>('SELECT id, status, length(result->>\'payload\') AS result_length FROM jobs WHERE id = ANY($1)', [large]);
    expect(rows.map(({ status, result_length }) => ({ status, result_length }))).toEqual(large.map(() => ({ status: 'succeeded', result_length: 600 * 1024 })));
  });

  it('leaves a finished job as it is', async () => {
    const id = await queuedJob('echo', { payload: 'once' });
    await executor.execute(id);
    await expect(executor.execute(id)).resolves.toEqual({ kind: 'done' });
    const starts = await fx.query<{ to_status: string }>("SELECT to_status FROM job_events WHERE job_id = $1 AND to_status = 'running'", [id]);
    expect(starts).toHaveLength(1);
  });

  /** Writes one transition straight through the statement; answers whether it applied. */
  async function written(transition: WorkerTransition): Promise<boolean> {
    const { rows, events } = mergeTransitions([transition]);
    return (await applyTransitions(fx.core.batchPool, rows, events)).applied.size === 1;
  }

  /** An executor whose first delivery read is followed by `afterFirstRead`, before the delivery goes on. */
  function executorInterruptedAfterRead(afterFirstRead: () => Promise<void>): JobExecutor {
    let interruption: (() => Promise<void>) | undefined = afterFirstRead;
    return new JobExecutor({
      ...executorOptions,
      transitions: {
        record: (transition, job) => transitions.record(transition, job),
        async delivery(jobId) {
          const row = await transitions.delivery(jobId);
          const interrupt = interruption;
          interruption = undefined;
          await interrupt?.();
          return row;
        },
      },
    });
  }

  it('hands on a redelivery that read the job before the start of a run whose lock lapsed landed, and the next delivery takes that run over', async () => {
    const id = await queuedJob('echo', { payload: 'taken over' });
    const firstStart = Date.now() - 10_000;
    const lapsedStart = firstStart + 5_000;
    expect(await written({ event: 'start', jobId: id, attempt: 1, at: firstStart, from: 'queued' })).toBe(true);

    // The start of the run after the first (its lock lapsed as PostgreSQL was away, the write
    // waited for PostgreSQL) lands right after this delivery read the job.
    const redelivery = executorInterruptedAfterRead(async () => {
      expect(await written({ event: 'start', jobId: id, attempt: 1, at: lapsedStart, from: 'running', takesOverRunStartedAt: firstStart })).toBe(true);
    });

    const handedOn = await redelivery.execute(id);
    expect(handedOn).toEqual({ kind: 'again', row: expect.objectContaining({ id, status: 'running', run_started_ms: lapsedStart }), delayMs: 0 });
    await expect(fx.one('SELECT status FROM jobs WHERE id = $1', [id])).resolves.toEqual({ status: 'running' });
    await expect(redelivery.execute(id)).resolves.toEqual({ kind: 'done' });
    await expect(fx.one('SELECT status, attempts, result FROM jobs WHERE id = $1', [id])).resolves.toEqual({ status: 'succeeded', attempts: 1, result: { payload: 'taken over' } });
    const trail = await fx.query<{ to_status: string }>('SELECT to_status FROM job_events WHERE job_id = $1 ORDER BY id', [id]);
    expect(trail.map((event) => event.to_status)).toEqual(['running', 'running', 'running', 'succeeded']);
  });

  it('hands on a redelivery whose start a concurrent write of the job\'s row made refused, and the next delivery takes the run over', async () => {
    const id = await queuedJob('echo', { payload: 'taken over again' });
    const firstStart = Date.now() - 10_000;
    expect(await written({ event: 'start', jobId: id, attempt: 1, at: firstStart, from: 'queued' })).toBe(true);

    // Another statement updates the job's row (as the lock-lapse ledger does) and holds it while this delivery's start is written.
    const other = await fx.core.generalPool.connect();
    try {
      await other.query('BEGIN');
      const redelivery = executorInterruptedAfterRead(async () => {
        await other.query('UPDATE jobs SET lock_lapses = lock_lapses WHERE id = $1', [id]);
      });
      const handedOn = redelivery.execute(id);
      await waitForRowLockWait(fx, id);
      await other.query('COMMIT');
      expect(await handedOn).toEqual({ kind: 'again', row: expect.objectContaining({ id, status: 'running', run_started_ms: firstStart }), delayMs: 0 });
      await expect(redelivery.execute(id)).resolves.toEqual({ kind: 'done' });
    } finally {
      other.release();
    }
    await expect(fx.one('SELECT status, attempts FROM jobs WHERE id = $1', [id])).resolves.toEqual({ status: 'succeeded', attempts: 1 });
  });

  it('writes a result again that a concurrent write of the job\'s row made refused, the job still in this run: stored once, not run again', async () => {
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const gated = new JobExecutor({
      ...executorOptions,
      processors: (type) => (type === 'gated' ? { definition: echo, run: async () => finished.then(() => ({ result: { payload: 'kept' } })) } : undefined),
    });
    const id = await queuedJob('gated', {});
    const settlement = gated.execute(id);
    await waitFor('the run to start', async () => (await fx.one<{ status: string }>('SELECT status FROM jobs WHERE id = $1', [id])).status === 'running');

    // Another statement updates the job's row (as the lock-lapse ledger does) and holds it while the result is written.
    const other = await fx.core.generalPool.connect();
    try {
      await other.query('BEGIN');
      await other.query('UPDATE jobs SET lock_lapses = lock_lapses WHERE id = $1', [id]);
      finish();
      await waitForRowLockWait(fx, id);
      await other.query('COMMIT');
    } finally {
      other.release();
    }
    await expect(settlement).resolves.toEqual({ kind: 'done' });
    await expect(fx.one('SELECT status, attempts, result FROM jobs WHERE id = $1', [id])).resolves.toEqual({ status: 'succeeded', attempts: 1, result: { payload: 'kept' } });
    const trail = await fx.query<{ to_status: string }>('SELECT to_status FROM job_events WHERE job_id = $1 ORDER BY id', [id]);
    expect(trail.map((event) => event.to_status)).toEqual(['running', 'succeeded']);
  });
});
