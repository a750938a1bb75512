/**
 * A cancel and a retry of the same fan-out job at once. Each is one transaction that moves
 * the tasks first and the job's own row second; a task statement reads the tasks as last
 * committed, so it does not see what the other transaction has moved but not yet
 * committed, while the job's row, locked next, waits for that transaction. Whichever
 * commits second must still leave the job and its tasks agreeing: a retried job waiting for
 * tasks that will run, a cancelled job with none left to run.
 *
 * Each test holds the first transaction open (its statements as the service runs them)
 * until the second waits for the job's row, then commits it: the interleaving two requests
 * a few milliseconds apart produce.
 */
import type { PoolClient } from 'pg';
import { cancelTasks, requeueTasks, resumeFanOut } from '../../../services/core/db/fanouts';
import { cancelJob } from '../../../services/core/db/jobs';
import { ConflictError } from '../../../services/core/errors';
import { createEngineFixture, submission, waitFor, type EngineFixture } from './fixture';

describe('fan-out jobs: a cancel and a retry of the same job at once', () => {
  let fx: EngineFixture;

  beforeEach(async () => {
    fx = await createEngineFixture();
  });
  afterEach(async () => {
    await fx?.close();
  });

  /** An echo.batch job of `count` tasks, all queued (no worker runs here). */
  async function batch(count: number): Promise<string> {
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo.batch', input: { count } }));
    return job.id;
  }

  /** Runs `first` in a transaction left open until `second` waits for one of its locks, then commits it; answers what `second` answered. */
  async function whileOpen<T>(first: (client: PoolClient) => Promise<unknown>, second: () => Promise<T>): Promise<T> {
    const client = await fx.core.generalPool.connect();
    try {
      await client.query('BEGIN');
      await first(client);
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const pid = rows[0]?.pid;
      const answer = second();
      await waitFor('the second request to wait for the first one\'s transaction', async () => {
        const blocked = await fx.query<{ count: number }>('SELECT count(*)::int AS count FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))', [pid]);
        return (blocked[0]?.count ?? 0) > 0;
      });
      await client.query('COMMIT');
      return await answer;
    } finally {
      client.release();
    }
  }

  it('a retry that commits after a cancel of the same job queues the tasks the cancel stopped', async () => {
    const parentId = await batch(4);
    await fx.core.jobs.cancel(fx.ownerId, parentId);
    await fx.core.jobs.retry(fx.ownerId, parentId);

    // A second cancel is mid-way when a second retry comes.
    const retried = await whileOpen(
      async (client) => {
        await cancelTasks(client, parentId, fx.ownerId);
        await cancelJob(client, parentId, fx.ownerId);
      },
      () => fx.core.jobs.retry(fx.ownerId, parentId),
    );

    expect(retried).toMatchObject({ status: 'waiting', tasks: { total: 4, queued: 4, cancelled: 0 } });
    expect(await fx.core.jobs.get(fx.ownerId, parentId)).toMatchObject({ status: 'waiting', tasks: { queued: 4, cancelled: 0 } });
  });

  it('a cancel that commits after a retry of the same job cancels the tasks the retry queued', async () => {
    const parentId = await batch(4);
    await fx.core.jobs.cancel(fx.ownerId, parentId);

    // A retry is mid-way when a cancel comes.
    const cancelled = await whileOpen(
      async (client) => {
        const tasks = await requeueTasks(client, parentId, fx.ownerId);
        await resumeFanOut(client, parentId, fx.ownerId, tasks.length, 'owner');
      },
      () => fx.core.jobs.cancel(fx.ownerId, parentId),
    );

    expect(cancelled).toMatchObject({ status: 'cancelled', tasks: { total: 4, queued: 0, cancelled: 4 } });
    const tasks = await fx.query<{ status: string }>('SELECT status FROM jobs WHERE parent_id = $1', [parentId]);
    expect(tasks.map((task) => task.status)).toEqual(['cancelled', 'cancelled', 'cancelled', 'cancelled']);
  });

  it('a retry of one task that waits behind the write finishing the job\'s last task is refused: the job no longer waits for it', async () => {
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo.batch', input: { count: 2, failurePolicy: { mode: 'tolerate', maxFailed: 2 } } }));
    const [first, last] = (await fx.query<{ id: string }>('SELECT id FROM jobs WHERE parent_id = $1 ORDER BY created_at, id', [job.id])).map((task) => task.id);
    await fx.core.jobs.cancel(fx.ownerId, first as string);

    // The cancel of the last task, which queues the job's reduce step, is mid-way when the first task's retry comes.
    const answer = await whileOpen(
      (client) => cancelJob(client, last as string, fx.ownerId),
      () => fx.core.jobs.retry(fx.ownerId, first as string).then((view) => view, (error: unknown) => error),
    );

    expect(answer).toBeInstanceOf(ConflictError);
    expect(await fx.core.jobs.get(fx.ownerId, first as string)).toMatchObject({ status: 'cancelled' });
    expect(await fx.core.jobs.get(fx.ownerId, job.id)).toMatchObject({ status: 'queued', tasks: { queued: 0, cancelled: 2 } });
  });
});
