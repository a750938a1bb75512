import { randomUUID } from 'node:crypto';
import type { JobStatus } from '../../../services/contract';
import { applyTransitions, cancelJob, requeueJob } from '../../../services/core/db/jobs';
import { retryFanOut } from '../../../services/core/jobs/fanout';
import { allPairs, nextStatus, type LifecycleEvent } from '../../../services/core/jobs/lifecycle';
import { mergeTransitions, type WorkerTransition } from '../../../services/core/jobs/transitions';
import { createEngineFixture, type EngineFixture } from './fixture';

/** The worker-side transition that reports `event` for a job at attempt 1. */
function transitionFor(event: Exclude<LifecycleEvent, 'cancel' | 'requeue' | 'reduce' | 'failTasks' | 'resume'>, jobId: string, status: JobStatus): WorkerTransition {
  const at = Date.now();
  const from = status === 'queued' ? 'queued' : 'running';
  switch (event) {
    case 'start':
      return { event, jobId, attempt: 1, at, from };
    case 'progress':
      return { event, jobId, attempt: 1, progress: 50 };
    case 'succeed':
      return { event, jobId, attempt: 1, at, result: { ok: true } };
    case 'fail':
      return { event, jobId, attempt: 1, at, error: 'boom' };
    case 'retry':
      return { event, jobId, attempt: 1, at, error: 'boom', retryInMs: 10 };
    case 'release':
      return { event, jobId, attempt: 1, at, cause: 'shutdown' };
    case 'defer':
      return { event, jobId, attempt: 1, at, dependency: 'PostgreSQL', error: 'connect ECONNREFUSED 127.0.0.1:5432', deferrals: 1, retryInMs: 10 };
    case 'abandon':
      return { event, jobId, attempt: 1, at, reason: 'crash loop', from };
  }
}

/**
 * Every (state, event) pair through the SQL that really writes it: the statements'
 * preconditions are generated from the lifecycle's table, and this proves they agree with
 * it: an allowed move lands in the table's state with one audit row, a refused one changes
 * nothing and leaves no audit row.
 */
describe('job lifecycle in SQL', () => {
  let fx: EngineFixture;

  beforeAll(async () => {
    fx = await createEngineFixture();
  });
  afterAll(async () => {
    await fx?.close();
  });

  /**
   * A fan-out job in `status` with one task: running for reduce and failTasks (the task's
   * success or failure is what moves its parent), failed for resume.
   */
  async function fanOutWithOneTask(id: string, status: JobStatus, taskStatus: 'running' | 'failed'): Promise<string> {
    const taskId = randomUUID();
    await fx.query("INSERT INTO jobs (id, owner_id, type, input, status, attempts, max_attempts) VALUES ($1, $2, 'echo.batch', '{}', $3, 1, 3)", [id, fx.ownerId, status]);
    await fx.query(
      `INSERT INTO job_fanouts (job_id, child_type, max_failed, total, queued, running, succeeded, failed, cancelled)
       VALUES ($1, 'echo', 0, 1, 0, $2, 0, $3, 0)`,
      [id, taskStatus === 'running' ? 1 : 0, taskStatus === 'failed' ? 1 : 0],
    );
    await fx.query("INSERT INTO jobs (id, owner_id, type, input, status, attempts, max_attempts, parent_id) VALUES ($1, $2, 'echo', '{}', $3, 1, 3, $4)", [
      taskId,
      fx.ownerId,
      taskStatus,
      id,
    ]);
    return taskId;
  }

  it.each(allPairs())('$event from $status', async ({ status, event }) => {
    const id = randomUUID();
    if (event === 'reduce' || event === 'failTasks') {
      const taskId = await fanOutWithOneTask(id, status, 'running');
      const { rows, events } = mergeTransitions([transitionFor(event === 'reduce' ? 'succeed' : 'fail', taskId, 'running')]);
      await applyTransitions(fx.core.batchPool, rows, events);
    } else if (event === 'resume') {
      await fanOutWithOneTask(id, status, 'failed');
      await retryFanOut(fx.core.generalPool, id, fx.ownerId, 'owner');
    } else await fx.query("INSERT INTO jobs (id, owner_id, type, input, status, attempts, max_attempts) VALUES ($1, $2, 'echo', '{}', $3, 1, 3)", [id, fx.ownerId, status]);
    if (event === 'cancel') await cancelJob(fx.core.generalPool, id, fx.ownerId);
    else if (event === 'requeue') await requeueJob(fx.core.generalPool, id, fx.ownerId, 'owner');
    else if (event !== 'reduce' && event !== 'failTasks' && event !== 'resume') {
      const { rows, events } = mergeTransitions([transitionFor(event, id, status)]);
      await applyTransitions(fx.core.batchPool, rows, events);
    }
    const expected = nextStatus(status, event);
    const row = await fx.one<{ status: string }>('SELECT status FROM jobs WHERE id = $1', [id]);
    expect(row.status).toBe(expected ?? status);
    const audit = await fx.query<{ from_status: string; to_status: string }>('SELECT from_status, to_status FROM job_events WHERE job_id = $1', [id]);
    expect(audit).toEqual(expected === undefined || event === 'progress' ? [] : [{ from_status: status, to_status: expected }]);
  });

  it('a deferral gives its attempt back and counts itself; a retry by the owner, of a job or of a fan-out job and its tasks, starts the count over', async () => {
    const id = randomUUID();
    await fx.query("INSERT INTO jobs (id, owner_id, type, input, status, attempts, max_attempts, deferrals) VALUES ($1, $2, 'echo', '{}', 'running', 2, 3, 4)", [id, fx.ownerId]);
    const deferral = mergeTransitions([{ event: 'defer', jobId: id, attempt: 2, at: Date.now(), dependency: 'Redis', error: 'Command timed out', deferrals: 5, retryInMs: 10 }]);
    await applyTransitions(fx.core.batchPool, deferral.rows, deferral.events);
    expect(await fx.one('SELECT status, attempts, deferrals FROM jobs WHERE id = $1', [id])).toEqual({ status: 'queued', attempts: 1, deferrals: 5 });

    const run = mergeTransitions([
      { event: 'start', jobId: id, attempt: 2, at: Date.now(), from: 'queued' },
      { event: 'fail', jobId: id, attempt: 2, at: Date.now(), error: 'boom' },
    ]);
    await applyTransitions(fx.core.batchPool, run.rows, run.events);
    expect(await fx.one('SELECT status, attempts, deferrals FROM jobs WHERE id = $1', [id])).toEqual({ status: 'failed', attempts: 2, deferrals: 5 });
    await requeueJob(fx.core.generalPool, id, fx.ownerId, 'owner');
    expect(await fx.one('SELECT status, attempts, deferrals FROM jobs WHERE id = $1', [id])).toEqual({ status: 'queued', attempts: 0, deferrals: 0 });

    const parentId = randomUUID();
    const taskId = await fanOutWithOneTask(parentId, 'failed', 'failed');
    await fx.query('UPDATE jobs SET deferrals = 7 WHERE id = ANY ($1::uuid[])', [[parentId, taskId]]);
    await retryFanOut(fx.core.generalPool, parentId, fx.ownerId, 'owner');
    expect(await fx.query('SELECT deferrals FROM jobs WHERE id = ANY ($1::uuid[])', [[parentId, taskId]])).toEqual([{ deferrals: 0 }, { deferrals: 0 }]);
  });
});
