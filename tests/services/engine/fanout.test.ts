import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { echo, QUEUES } from '../../../services/contract';
import { countDeadLetters } from '../../../services/core/db/jobs';
import { cancelChannel } from '../../../services/core/queue/keys';
import { findProcessor } from '../../../services/worker/jobs';
import { defineProcessor, PermanentJobError, type Processor } from '../../../services/worker/processor';
import { startRedis, type RedisServer } from '../../harness/redis';
import { startPostgres, type PostgresServer } from '../../harness/postgres';
import { useSharedServices } from '../../harness/shared';
import { createEngineFixture, killWorkerChildren, spawnWorker, statusOf, submission, waitFor, type EngineFixture } from './fixture';

const WORKER_CHILD = 'tests/services/engine/worker-child.ts';

/** Echo that fails for good for the task ids in `failing`, at every attempt. */
function echoFailingFor(failing: Set<string>): (type: string) => Processor | undefined {
  const failingEcho = defineProcessor(echo, async ({ input, jobId }) => {
    if (failing.has(jobId)) throw new PermanentJobError('this task is made to fail');
    return { result: { payload: input.payload } };
  });
  return (type) => (type === 'echo' ? (failingEcho as unknown as Processor) : findProcessor(type));
}

/** What a fan-out job's counts must be: the statuses its tasks are in, counted from their rows. */
async function assertCountsMatchTasks(fx: EngineFixture, parentId: string): Promise<Record<string, number>> {
  const counted = await fx.query<{ status: string; count: number }>('SELECT status, count(*)::int AS count FROM jobs WHERE parent_id = $1 GROUP BY status', [parentId]);
  const actual: Record<string, number> = { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };
  for (const row of counted) actual[row.status] = row.count;
  const { tasks } = await fx.core.jobs.get(fx.ownerId, parentId);
  expect(tasks).toMatchObject(actual);
  return actual;
}

/** Every task of the job succeeded exactly once: one `succeeded` audit row each, none twice. */
async function assertEachTaskSucceededOnce(fx: EngineFixture, parentId: string, total: number): Promise<void> {
  const { once, twice } = await fx.one<{ once: number; twice: number }>(
    `SELECT count(*) FILTER (WHERE n = 1)::int AS once, count(*) FILTER (WHERE n > 1)::int AS twice FROM (
       SELECT j.id, count(e.id) AS n FROM jobs j LEFT JOIN job_events e ON e.job_id = j.id AND e.to_status = 'succeeded'
       WHERE j.parent_id = $1 GROUP BY j.id) AS per_task`,
    [parentId],
  );
  expect({ once, twice }).toEqual({ once: total, twice: 0 });
}

async function submitBatch(fx: EngineFixture, count: number, failurePolicy?: unknown): Promise<string> {
  const input = failurePolicy === undefined ? { count, payload: 'x' } : { count, payload: 'x', failurePolicy };
  const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo.batch', input }));
  return job.id;
}

async function taskIds(fx: EngineFixture, parentId: string): Promise<string[]> {
  return (await fx.query<{ id: string }>('SELECT id FROM jobs WHERE parent_id = $1 ORDER BY created_at, id', [parentId])).map((row) => row.id);
}

describe('fan-out jobs', () => {
  let fx: EngineFixture;

  beforeEach(async () => {
    fx = await createEngineFixture();
  });
  afterEach(async () => {
    await fx?.close();
  });

  it('runs every task as its own job, counts them on the parent in step, and runs the reduce step once at the end', async () => {
    const parentId = await submitBatch(fx, 300);
    const submitted = await fx.core.jobs.get(fx.ownerId, parentId);
    expect(submitted).toMatchObject({ status: 'waiting', progress: 0, parentId: null, tasks: { total: 300, queued: 300, succeeded: 0, failurePolicy: { mode: 'fail-fast' } } });
    expect((await taskIds(fx, parentId)).length).toBe(300);

    await fx.startRunner({ concurrency: 50 });
    await waitFor('the fan-out job to succeed', async () => (await statusOf(fx, parentId)) === 'succeeded', 60_000);
    const done = await fx.core.jobs.get(fx.ownerId, parentId);
    expect(done).toMatchObject({ progress: 100, attempts: 1, result: { tasks: 300, succeeded: 300, failed: 0 } });
    await assertCountsMatchTasks(fx, parentId);
    await assertEachTaskSucceededOnce(fx, parentId, 300);
    const parentEvents = await fx.query<{ from_status: string | null; to_status: string }>('SELECT from_status, to_status FROM job_events WHERE job_id = $1 ORDER BY id', [parentId]);
    expect(parentEvents.map((event) => `${event.from_status}>${event.to_status}`)).toEqual(['null>waiting', 'waiting>queued', 'queued>running', 'running>succeeded']);
    // Tasks are listed by their parent, not among the owner's jobs.
    expect((await fx.core.jobs.list(fx.ownerId, { limit: 100 })).items.map((item) => item.id)).toEqual([parentId]);
    const page = await fx.core.jobs.tasks(fx.ownerId, parentId, { limit: 100 });
    expect(page.items).toHaveLength(100);
    expect(page.items[0]).toMatchObject({ type: 'echo', status: 'succeeded', parentId, tasks: null });
    expect(page.counts).toMatchObject({ total: 300, succeeded: 300 });
    const rest = await fx.core.jobs.tasks(fx.ownerId, parentId, { limit: 1_000, cursor: page.nextCursor ?? undefined });
    expect(rest.items).toHaveLength(200);
    expect(new Set([...page.items, ...rest.items].map((item) => item.id)).size).toBe(300);
  });

  it('files.checksum: one task per file, and a manifest of their digests as the result file', async () => {
    const contents = ['alpha\n', 'beta\n', 'gamma\n'];
    const files = await Promise.all(
      contents.map((content, index) =>
        fx.core.files.upload({ ownerId: fx.ownerId, name: `f${index}.txt`, contentType: 'text/plain', body: Readable.from(Buffer.from(content)), maxBytes: 1_000 }),
      ),
    );
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'files.checksum', input: { fileIds: files.map((file) => file.id) } }));
    await fx.startRunner();
    await waitFor('the checksums to finish', async () => (await statusOf(fx, job.id)) === 'succeeded', 30_000);
    const done = await fx.core.jobs.get(fx.ownerId, job.id);
    const expected = files.map((file, index) => `${createHash('sha256').update(contents[index] as string).digest('hex')}  ${file.id}`).join('\n') + '\n';
    expect(done.result).toEqual({ algorithm: 'sha256', files: 3, succeeded: 3, failed: 0, manifestSha256: createHash('sha256').update(expected).digest('hex') });
    const { body } = await fx.core.files.openContent(fx.ownerId, done.resultFileId as string);
    expect(Buffer.concat(await body.toArray()).toString('utf8')).toBe(expected);
  });

  it('fail-fast: the first task that fails for good fails the parent and cancels the unfinished tasks; retry re-runs only those', async () => {
    const parentId = await submitBatch(fx, 200);
    const ids = await taskIds(fx, parentId);
    const failing = new Set([ids[0] as string]);
    const runner = await fx.startRunner({ concurrency: 5 }, { processors: echoFailingFor(failing) });
    await waitFor('the parent to fail', async () => (await statusOf(fx, parentId)) === 'failed', 30_000);
    await waitFor('the unfinished tasks to be cancelled', async () => {
      const counts = await assertCountsMatchTasks(fx, parentId);
      return counts.queued === 0 && counts.running === 0;
    });
    const failed = await fx.core.jobs.get(fx.ownerId, parentId);
    expect(failed.error).toMatch(/^1 tasks failed and 0 were cancelled; the failure policy tolerates 0$/);
    expect(failed.tasks?.failed).toBe(1);
    expect(failed.tasks?.cancelled).toBeGreaterThan(0);
    const succeededBefore = (await fx.query<{ id: string }>("SELECT id FROM jobs WHERE parent_id = $1 AND status = 'succeeded'", [parentId])).map((row) => row.id);

    await runner.stop(1_000);
    failing.clear();
    await fx.startRunner({ concurrency: 50 }, { processors: echoFailingFor(failing) });
    const retried = await fx.core.jobs.retry(fx.ownerId, parentId);
    expect(retried.status).toBe('waiting');
    await waitFor('the retried parent to succeed', async () => (await statusOf(fx, parentId)) === 'succeeded', 30_000);
    await assertCountsMatchTasks(fx, parentId);
    await assertEachTaskSucceededOnce(fx, parentId, 200);
    // The tasks that had succeeded ran once: their only run is the first.
    const rerun = await fx.query<{ job_id: string }>("SELECT DISTINCT job_id FROM job_events WHERE job_id = ANY($1::uuid[]) AND detail = 'retried with its fan-out job'", [succeededBefore]);
    expect(rerun).toEqual([]);
  });

  it('tolerate: up to maxFailed failed tasks, and the reduce step runs over the rest', async () => {
    const parentId = await submitBatch(fx, 20, { mode: 'tolerate', maxFailed: 2 });
    const ids = await taskIds(fx, parentId);
    await fx.startRunner({}, { processors: echoFailingFor(new Set([ids[3] as string, ids[7] as string])) });
    await waitFor('the parent to succeed', async () => (await statusOf(fx, parentId)) === 'succeeded', 30_000);
    expect(await fx.core.jobs.get(fx.ownerId, parentId)).toMatchObject({
      result: { tasks: 20, succeeded: 18, failed: 2 },
      tasks: { total: 20, succeeded: 18, failed: 2, failurePolicy: { mode: 'tolerate', maxFailed: 2 } },
    });

    // A failed task retried or replayed now would change counts the job's result no longer follows.
    const finished = await fx.core.jobs.get(fx.ownerId, parentId);
    await expect(fx.core.jobs.retry(fx.ownerId, ids[3] as string)).rejects.toThrow(/that job is succeeded/);
    await expect(fx.core.admin.replay(ids[7] as string)).rejects.toThrow(/that job is succeeded/);
    expect(await fx.core.jobs.get(fx.ownerId, parentId)).toEqual(finished);
  });

  it('the dead-letter set holds a failed task while its job waits for its tasks, and not once the job has counted it', async () => {
    const parentId = await submitBatch(fx, 2, { mode: 'tolerate', maxFailed: 1 });
    const [failingTask, heldTask] = (await taskIds(fx, parentId)) as [string, string];
    let holding = true;
    const failsOrHolds = defineProcessor(echo, async ({ input, jobId, signal }) => {
      if (jobId === failingTask) throw new PermanentJobError('this task is made to fail');
      while (holding && jobId === heldTask) {
        signal.throwIfAborted();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return { result: { payload: input.payload } };
    });
    await fx.startRunner({ concurrency: 5 }, { processors: (type) => (type === 'echo' ? (failsOrHolds as unknown as Processor) : findProcessor(type)) });
    const deadLetterIds = async () => (await fx.core.admin.deadLetters({ limit: 100 })).items.map((job) => job.id);

    await waitFor('the task to fail while its job waits', async () => (await statusOf(fx, failingTask)) === 'failed');
    expect(await statusOf(fx, parentId)).toBe('waiting');
    expect(await deadLetterIds()).toEqual([failingTask]);
    expect(await countDeadLetters(fx.core.generalPool)).toBe(1);

    holding = false;
    await waitFor('the job to succeed over its failed task', async () => (await statusOf(fx, parentId)) === 'succeeded', 30_000);
    expect(await statusOf(fx, failingTask)).toBe('failed');
    expect(await deadLetterIds()).toEqual([]);
    expect(await countDeadLetters(fx.core.generalPool)).toBe(0);
  });

  it('statements over a fan-out job\'s tasks (a reduce step\'s read, the cancel of a failed job\'s tasks) never run on the batch pool', async () => {
    const reduced = await submitBatch(fx, 5);
    const failing = await submitBatch(fx, 30);
    const [failingTask, ...otherTasks] = await taskIds(fx, failing);
    // The failing job's other tasks hold their slots until they are cancelled, so all of them are
    // unfinished when the job fails, however the worker orders them. Enough slots for every entry
    // at once: the failing task never waits behind held ones.
    const holding = new Set(otherTasks);
    const failsOrHolds = defineProcessor(echo, async ({ input, jobId, signal }) => {
      if (jobId === failingTask) throw new PermanentJobError('this task is made to fail');
      while (holding.has(jobId) && (await statusOf(fx, jobId)) !== 'cancelled') {
        signal.throwIfAborted();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return { result: { payload: input.payload } };
    });
    const runner = await fx.startRunner({ concurrency: 20 }, { processors: (type) => (type === 'echo' ? (failsOrHolds as unknown as Processor) : findProcessor(type)) });
    await waitFor('the reduce step to succeed', async () => (await statusOf(fx, reduced)) === 'succeeded', 30_000);
    await waitFor('the failed job\'s unfinished tasks to be cancelled', async () => {
      const counts = await assertCountsMatchTasks(fx, failing);
      return (await statusOf(fx, failing)) === 'failed' && counts.queued === 0 && counts.running === 0 && counts.cancelled === otherTasks.length;
    });
    await runner.stop(1_000);
    // Every connection of the batch pool at once (it holds at most 4): the statements each has prepared.
    const connections = await Promise.all(Array.from({ length: 4 }, () => fx.core.batchPool.connect()));
    try {
      const prepared = await Promise.all(connections.map(async (connection) => (await connection.query<{ name: string }>('SELECT name FROM pg_prepared_statements')).rows));
      const names = new Set(prepared.flat().map((row) => row.name));
      expect(names).toContain('jobs.apply-transitions');
      expect(names).not.toContain('fanouts.task-outcomes');
      expect(names).not.toContain('fanouts.cancel-tasks');
    } finally {
      for (const connection of connections) connection.release();
    }
  });

  it('cancelling a fan-out job whose queued reduce step a worker has just taken tells that worker to stop', async () => {
    const parentId = await submitBatch(fx, 1);
    // Its only task succeeded and its reduce step is queued, with its entry in Redis.
    await fx.query("UPDATE jobs SET status = 'succeeded' WHERE parent_id = $1", [parentId]);
    await fx.query('UPDATE job_fanouts SET queued = 0, succeeded = 1 WHERE job_id = $1', [parentId]);
    await fx.query("UPDATE jobs SET status = 'queued' WHERE id = $1", [parentId]);
    await fx.core.relay.enqueue([{ id: parentId, type: 'echo.batch', priority: 0 }], 'requeue');
    // A worker takes the entry (and its lock) before the cancel's remove: the entry cannot be taken out.
    const connection = new Redis(fx.env.REDIS_URL, { maxRetriesPerRequest: null });
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let taken = false;
    const holder = new Worker(
      QUEUES.jobs,
      async (entry) => {
        if (entry.id !== parentId) return;
        taken = true;
        await held;
      },
      { connection, prefix: fx.env.QUEUE_PREFIX },
    );
    const subscriber = fx.core.redis.client.duplicate();
    const signalled: string[] = [];
    subscriber.on('message', (_channel: string, jobId: string) => signalled.push(jobId));
    try {
      await waitFor('a worker to take the reduce step', async () => taken);
      await subscriber.subscribe(cancelChannel(fx.env.QUEUE_PREFIX));
      expect(await fx.core.jobs.cancel(fx.ownerId, parentId)).toMatchObject({ status: 'cancelled' });
      await waitFor('the cancel signal for the reduce step', async () => signalled.includes(parentId), 5_000);
    } finally {
      release();
      await holder.close();
      connection.disconnect();
      subscriber.disconnect();
    }
  });

  it('cancelling the parent cancels every task not yet finished, and none of them runs', async () => {
    const parentId = await submitBatch(fx, 50);
    const cancelled = await fx.core.jobs.cancel(fx.ownerId, parentId);
    expect(cancelled).toMatchObject({ status: 'cancelled', tasks: { total: 50, cancelled: 50, queued: 0 } });
    await assertCountsMatchTasks(fx, parentId);
    await fx.startRunner();
    // The queue entries still in Redis are dropped when delivered: nothing runs.
    await waitFor('the queue to drain', async () => (await fx.core.relay.queue.getJobCounts('wait')).wait === 0);
    const { count } = await fx.one<{ count: number }>("SELECT count(*)::int AS count FROM job_events e JOIN jobs j ON j.id = e.job_id WHERE j.parent_id = $1 AND e.to_status = 'running'", [parentId]);
    expect(count).toBe(0);
    await expect(fx.core.jobs.cancel(fx.ownerId, parentId)).rejects.toThrow(/already cancelled/);
  });
});

describe('fan-out jobs across faults', () => {
  let fx: EngineFixture | undefined;
  let redis: RedisServer | undefined;
  let postgres: PostgresServer | undefined;

  afterEach(async () => {
    await killWorkerChildren();
    await fx?.close();
    await redis?.destroy();
    await postgres?.destroy();
    fx = undefined;
    redis = undefined;
    postgres = undefined;
  });

  const TASKS = 600;

  it('a worker SIGKILLed mid-way: no task lost or counted twice', async () => {
    fx = await createEngineFixture({ core: { relaySweep: true } });
    const current = fx;
    const doomed = await spawnWorker(current, WORKER_CHILD, { WORKER_CONCURRENCY: '20' });
    const parentId = await submitBatch(current, TASKS);
    await waitFor('a part of the tasks to finish', async () => ((await current.core.jobs.get(current.ownerId, parentId)).tasks?.succeeded ?? 0) >= 100, 30_000, 5);
    doomed.kill('SIGKILL');
    await doomed.exited;
    await current.startRunner({ concurrency: 50 });
    await waitFor('the parent to succeed', async () => (await statusOf(current, parentId)) === 'succeeded', 90_000);
    await assertCountsMatchTasks(current, parentId);
    await assertEachTaskSucceededOnce(current, parentId, TASKS);
  }, 120_000);

  it('Redis restarted empty mid-way: the sweep re-enqueues, no task lost or counted twice', async () => {
    redis = await startRedis();
    const shared = await useSharedServices();
    fx = await createEngineFixture({ servers: { databaseUrl: shared.databaseUrl, redisUrl: redis.url, redisPrefix: `{t-${randomUUID()}}` }, core: { relaySweep: true } });
    const current = fx;
    const parentId = await submitBatch(current, TASKS);
    const runner = await current.startRunner({ concurrency: 10 });
    await waitFor('a part of the tasks to finish', async () => ((await current.core.jobs.get(current.ownerId, parentId)).tasks?.succeeded ?? 0) >= 50, 30_000, 5);
    await runner.stop(2_000);
    await redis.restartEmpty();
    await waitFor('the enqueue connection to reconnect', async () => current.core.redis.producer.status === 'ready');
    await current.startRunner({ concurrency: 50 });
    await waitFor('the parent to succeed', async () => (await statusOf(current, parentId)) === 'succeeded', 90_000);
    await assertCountsMatchTasks(current, parentId);
    await assertEachTaskSucceededOnce(current, parentId, TASKS);
  }, 120_000);

  it('PostgreSQL restarted mid-way: the writes wait for it, no task lost or counted twice', async () => {
    postgres = await startPostgres();
    const shared = await useSharedServices();
    fx = await createEngineFixture({ servers: { databaseUrl: await postgres.createDatabase(), redisUrl: shared.redisUrl, redisPrefix: `{t-${randomUUID()}}` }, core: { relaySweep: true } });
    const current = fx;
    const server = postgres;
    const parentId = await submitBatch(current, TASKS);
    await current.startRunner({ concurrency: 20 });
    await waitFor('a part of the tasks to finish', async () => ((await current.core.jobs.get(current.ownerId, parentId)).tasks?.succeeded ?? 0) >= 50, 30_000, 5);
    await server.stop();
    await server.start();
    await waitFor('the parent to succeed', async () => (await statusOf(current, parentId)) === 'succeeded', 90_000, 200);
    await assertCountsMatchTasks(current, parentId);
    await assertEachTaskSucceededOnce(current, parentId, TASKS);
  }, 120_000);
});
