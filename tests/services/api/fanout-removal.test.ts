import type { WorkerProcess } from '../../../services/worker/main';
import { waitFor } from '../engine/fixture';
import { platform } from '../cli/platform-cli';
import { call, signUp, startApi, type ApiFixture } from './fixture';
import { startWorkerFor } from './worker-process';

interface Submitted {
  id: string;
  status: string;
  resultFileId: string | null;
}

async function submit(api: ApiFixture, token: string, type: string, input: unknown) {
  return call<Submitted>(api, '/v1/jobs', { token, json: { type, input } });
}

async function untilStatus(api: ApiFixture, token: string, jobId: string, status: string): Promise<Submitted> {
  return waitFor(`job ${jobId} to be ${status}`, async () => {
    const job = await call<Submitted>(api, `/v1/jobs/${jobId}`, { token });
    return job.body.status === status && job.body;
  }, 60_000);
}

async function taskIdsOf(api: ApiFixture, parentId: string): Promise<string[]> {
  return (await api.db.query<{ id: string }>('SELECT id FROM jobs WHERE parent_id = $1 ORDER BY id', [parentId])).rows.map((row) => row.id);
}

/** Rows of a job and its tasks left in jobs, job_events and job_fanouts. */
async function rowsLeft(api: ApiFixture, parentId: string): Promise<{ jobs: number; events: number; fanouts: number }> {
  const { rows } = await api.db.query<{ jobs: number; events: number; fanouts: number }>(
    `SELECT (SELECT count(*)::int FROM jobs WHERE id = $1 OR parent_id = $1) AS jobs,
            (SELECT count(*)::int FROM job_events WHERE job_id = $1 OR job_id IN (SELECT id FROM jobs WHERE parent_id = $1)) AS events,
            (SELECT count(*)::int FROM job_fanouts WHERE job_id = $1) AS fanouts`,
    [parentId],
  );
  return rows[0] ?? { jobs: -1, events: -1, fanouts: -1 };
}

async function upload(api: ApiFixture, token: string, body: string): Promise<string> {
  const response = await call<{ id: string }>(api, '/v1/files', { token, body, headers: { 'content-type': 'text/plain' } });
  if (response.status !== 201) throw new Error(`upload failed: ${response.status}`);
  return response.body.id;
}

describe('fan-out jobs under quotas and deletion', () => {
  let api: ApiFixture;
  let worker: WorkerProcess | undefined;

  beforeAll(async () => {
    api = await startApi({ env: { QUOTA_QUEUED_JOBS: '30' } });
  });
  afterAll(async () => {
    await worker?.stop();
    await api?.close();
  });

  it('counts a fan-out job\'s tasks against the queued-jobs quota, and writes nothing for a refused one', async () => {
    const { token, userId } = await signUp(api);
    const tooMany = await submit(api, token, 'echo.batch', { count: 31 });
    expect(tooMany.status).toBe(403);
    expect(tooMany.body).toMatchObject({ detail: expect.stringContaining('31 tasks') });
    expect((await api.db.query('SELECT 1 FROM jobs WHERE owner_id = $1', [userId])).rowCount).toBe(0);
    expect((await submit(api, token, 'echo.batch', { count: 20 })).status).toBe(202);
    expect((await submit(api, token, 'echo.batch', { count: 11 })).status).toBe(403);
    expect((await submit(api, token, 'echo.batch', { count: 10 })).status).toBe(202);
    expect((await submit(api, token, 'echo', {})).status).toBe(403);
    expect((await api.db.query("SELECT 1 FROM jobs WHERE owner_id = $1 AND status = 'queued'", [userId])).rowCount).toBe(30);
  });

  it('refuses to delete a task, an unfinished fan-out job, and a finished one whose tasks still run; deletes a finished one with its tasks, events and result file', async () => {
    const { token } = await signUp(api);
    const fileIds = [await upload(api, token, 'one'), await upload(api, token, 'two')];
    const parent = await submit(api, token, 'files.checksum', { fileIds });
    expect(parent.status).toBe(202);
    const [taskId] = await taskIdsOf(api, parent.body.id);
    expect((await call(api, `/v1/jobs/${parent.body.id}`, { method: 'DELETE', token })).status).toBe(409);
    const taskRefused = await call(api, `/v1/jobs/${taskId}`, { method: 'DELETE', token });
    expect(taskRefused.status).toBe(409);
    expect(taskRefused.body).toMatchObject({ detail: expect.stringContaining(`task of fan-out job ${parent.body.id}`) });

    // A parent failed by a fail-fast policy while tasks still run: finished, its tasks not.
    const failedEarly = await submit(api, token, 'echo.batch', { count: 2 });
    await api.db.query("UPDATE jobs SET status = 'failed', finished_at = now() WHERE id = $1", [failedEarly.body.id]);
    const stillRunning = await call(api, `/v1/jobs/${failedEarly.body.id}`, { method: 'DELETE', token });
    expect(stillRunning.status).toBe(409);
    expect(stillRunning.body).toMatchObject({ detail: expect.stringContaining('2 unfinished task(s)') });
    expect(await rowsLeft(api, failedEarly.body.id)).toMatchObject({ jobs: 3, fanouts: 1 });

    worker = await startWorkerFor(api);
    const done = await untilStatus(api, token, parent.body.id, 'succeeded');
    expect(done.resultFileId).toEqual(expect.any(String));
    const { rows } = await api.db.query<{ storage_key: string }>('SELECT storage_key FROM files WHERE id = $1', [done.resultFileId]);
    const storageKey = rows[0]?.storage_key ?? '';
    expect(await api.core.store.head(storageKey)).toBeDefined();
    expect((await call(api, `/v1/jobs/${taskId}`, { method: 'DELETE', token })).status).toBe(409);

    expect((await call(api, `/v1/jobs/${parent.body.id}`, { method: 'DELETE', token })).status).toBe(204);
    expect(await rowsLeft(api, parent.body.id)).toEqual({ jobs: 0, events: 0, fanouts: 0 });
    expect((await api.db.query('SELECT 1 FROM jobs WHERE id = $1', [taskId])).rowCount).toBe(0);
    expect((await call(api, `/v1/files/${done.resultFileId}`, { token })).status).toBe(404);
    expect(await api.core.store.head(storageKey)).toBeUndefined();
    // The inputs it read are the caller's uploads, not its output: they stay.
    for (const fileId of fileIds) expect((await call(api, `/v1/files/${fileId}`, { token })).status).toBe(200);
  });
});

describe('retention purge of fan-out jobs', () => {
  let api: ApiFixture;
  let cliEnv: Record<string, string>;

  beforeAll(async () => {
    api = await startApi();
    cliEnv = { DATABASE_URL: api.env.DATABASE_URL, REDIS_URL: api.env.REDIS_URL, QUEUE_PREFIX: api.env.QUEUE_PREFIX, OBJECT_STORE_DIR: api.env.OBJECT_STORE_DIR, LOG_LEVEL: 'error' };
  });
  afterAll(() => api?.close());

  const age = (ids: string[]) => api.db.query("UPDATE jobs SET finished_at = now() - interval '2 days' WHERE id = ANY($1::uuid[])", [ids]);

  it('removes a finished fan-out job with all its tasks, never a task alone nor the tasks of an unfinished job: from the CLI and the worker\'s periodic run', async () => {
    const { token } = await signUp(api);
    // Finished for real: a fan-out job and a plain job, run by a worker.
    const firstWorker = await startWorkerFor(api);
    let finished: Submitted;
    let plain: Submitted;
    try {
      finished = (await submit(api, token, 'echo.batch', { count: 5 })).body;
      plain = (await submit(api, token, 'echo', { payload: 'old' })).body;
      await untilStatus(api, token, finished.id, 'succeeded');
      await untilStatus(api, token, plain.id, 'succeeded');
    } finally {
      await firstWorker.stop();
    }
    const finishedTasks = await taskIdsOf(api, finished.id);
    await age([finished.id, plain.id, ...finishedTasks]);

    // Unfinished: a waiting fan-out job two of whose tasks finished long ago.
    const waiting = (await submit(api, token, 'echo.batch', { count: 3 })).body;
    const waitingTasks = await taskIdsOf(api, waiting.id);
    await api.db.query("UPDATE jobs SET status = 'succeeded', finished_at = now() - interval '2 days' WHERE id = ANY($1::uuid[])", [waitingTasks.slice(0, 2)]);
    // Failed long ago by its policy while its tasks still wait to run.
    const failedEarly = (await submit(api, token, 'echo.batch', { count: 2 })).body;
    await api.db.query("UPDATE jobs SET status = 'failed', finished_at = now() - interval '2 days' WHERE id = $1", [failedEarly.id]);

    const purged = await platform(['purge', '--retention-days', '1', '--json'], cliEnv);
    expect(purged.stderr).toBe('');
    expect(JSON.parse(purged.stdout)).toEqual({ purged: 1 + finishedTasks.length + 1, retentionDays: 1, expired: { refreshTokens: 0, sessions: 0, resetTokens: 0 } });
    expect(await rowsLeft(api, finished.id)).toEqual({ jobs: 0, events: 0, fanouts: 0 });
    expect((await call(api, `/v1/jobs/${plain.id}`, { token })).status).toBe(404);
    expect(await rowsLeft(api, waiting.id)).toMatchObject({ jobs: 4, fanouts: 1 });
    expect(await rowsLeft(api, failedEarly.id)).toMatchObject({ jobs: 3, fanouts: 1 });

    // The failed job's tasks end (cancelled, as its policy does), long ago too: now it goes, with them.
    await api.db.query(
      "UPDATE jobs SET status = 'cancelled', finished_at = now() - interval '2 days' WHERE parent_id = $1",
      [failedEarly.id],
    );
    await api.db.query('UPDATE job_fanouts SET queued = 0, cancelled = 2 WHERE job_id = $1', [failedEarly.id]);
    const purgingWorker = await startWorkerFor(api, { JOB_RETENTION_DAYS: '1', PURGE_INTERVAL_SECONDS: '1' });
    try {
      await waitFor('the worker\'s periodic purge to remove the failed fan-out job', async () => (await rowsLeft(api, failedEarly.id)).jobs === 0, 30_000);
    } finally {
      await purgingWorker.stop();
    }
    expect(await rowsLeft(api, failedEarly.id)).toEqual({ jobs: 0, events: 0, fanouts: 0 });
    expect(await rowsLeft(api, waiting.id)).toMatchObject({ jobs: 4, fanouts: 1 });
  });
});
