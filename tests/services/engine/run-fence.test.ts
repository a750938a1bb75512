import { randomUUID } from 'node:crypto';
import { applyTransitions, loadDeliveries } from '../../../services/core/db/jobs';
import type { Queryable } from '../../../services/core/db/pool';
import { mergeTransitions, type WorkerTransition } from '../../../services/core/jobs/transitions';
import { createEngineFixture, waitForRowLockWait, type EngineFixture } from './fixture';

/**
 * Two runs of one attempt (a redelivery after the first run's queue lock lapsed) write
 * through the same SQL: each names its own start, and only the run whose start is the job's
 * latest moves the job. Here through the statement itself, the runs' order set by hand.
 */
describe('job state writes of two runs of one attempt', () => {
  let fx: EngineFixture;

  beforeAll(async () => {
    fx = await createEngineFixture();
  });
  afterAll(async () => {
    await fx?.close();
  });

  async function write(db: Queryable, ...transitions: WorkerTransition[]): Promise<boolean> {
    const { rows, events } = mergeTransitions(transitions);
    return (await applyTransitions(db, rows, events)).applied.size === rows.length;
  }

  /** A job the first run started at `firstStart`, written on its own. */
  async function startedJob(firstStart: number): Promise<string> {
    const id = randomUUID();
    await fx.query("INSERT INTO jobs (id, owner_id, type, input, status, max_attempts) VALUES ($1, $2, 'echo', '{}', 'queued', 1)", [id, fx.ownerId]);
    expect(await write(fx.core.batchPool, { event: 'start', jobId: id, attempt: 1, at: firstStart, from: 'queued' })).toBe(true);
    return id;
  }

  async function stateOf(id: string) {
    const job = await fx.one<{ status: string; error: string | null }>('SELECT status, error FROM jobs WHERE id = $1', [id]);
    const trail = await fx.query<{ to_status: string }>('SELECT to_status FROM job_events WHERE job_id = $1 ORDER BY id', [id]);
    return { ...job, trail: trail.map((event) => event.to_status) };
  }

  it('refuses the outcome of the run whose job another run started since, and takes that run\'s', async () => {
    const firstStart = Date.now() - 10_000;
    const id = await startedJob(firstStart);
    const [delivery] = await loadDeliveries(fx.core.batchPool, [id]);
    expect(delivery?.run_started_ms).toBe(firstStart);

    const secondStart = firstStart + 5_000;
    expect(await write(fx.core.batchPool, { event: 'start', jobId: id, attempt: 1, at: secondStart, from: 'running', takesOverRunStartedAt: firstStart })).toBe(true);
    expect(await write(fx.core.batchPool, { event: 'fail', jobId: id, attempt: 1, at: Date.now(), error: 'the first run', runStartedAt: firstStart })).toBe(false);
    // A third delivery that read the job before the second run started takes over no more.
    expect(await write(fx.core.batchPool, { event: 'start', jobId: id, attempt: 1, at: Date.now(), from: 'running', takesOverRunStartedAt: firstStart })).toBe(false);
    expect(await write(fx.core.batchPool, { event: 'succeed', jobId: id, attempt: 1, at: Date.now(), result: { run: 2 }, runStartedAt: secondStart })).toBe(true);

    expect(await stateOf(id)).toEqual({ status: 'succeeded', error: null, trail: ['running', 'running', 'succeeded'] });
  });

  it('refuses it too when the other run\'s start commits while the outcome waits for the row', async () => {
    const firstStart = Date.now() - 10_000;
    const id = await startedJob(firstStart);
    const secondRun = await fx.core.generalPool.connect();
    try {
      await secondRun.query('BEGIN');
      expect(await write(secondRun, { event: 'start', jobId: id, attempt: 1, at: firstStart + 5_000, from: 'running', takesOverRunStartedAt: firstStart })).toBe(true);
      // Its statement reads job_events before the start above commits, then waits for the row that start holds.
      const firstOutcome = write(fx.core.batchPool, { event: 'fail', jobId: id, attempt: 1, at: Date.now(), error: 'the first run', runStartedAt: firstStart });
      await waitForRowLockWait(fx, id);
      await secondRun.query('COMMIT');
      expect(await firstOutcome).toBe(false);
    } finally {
      secondRun.release();
    }
    expect(await stateOf(id)).toEqual({ status: 'running', error: null, trail: ['running', 'running'] });
  });
});
