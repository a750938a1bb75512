import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { runMigrations } from '../../../services/core/db/migrate';
import type { WorkerProcess } from '../../../services/worker/main';
import { useSharedServices } from '../../harness/shared';
import { waitFor } from '../engine/fixture';
import { platform } from '../cli/platform-cli';
import { call, signUp, startApi, type ApiFixture } from './fixture';
import { startWorkerFor } from './worker-process';

interface Job {
  id: string;
  status: string;
  input: unknown;
  result: unknown;
}

interface Kept {
  jobs: number;
  bytes: number;
}

/** What job_usage says the owner keeps. */
async function usageOf(api: ApiFixture, ownerId: string): Promise<Kept> {
  const { rows } = await api.db.query<{ jobs: string; bytes: string }>(
    'SELECT COALESCE(sum(jobs), 0) AS jobs, COALESCE(sum(bytes), 0) AS bytes FROM job_usage WHERE owner_id = $1',
    [ownerId],
  );
  return { jobs: Number(rows[0]?.jobs), bytes: Number(rows[0]?.bytes) };
}

/** What the owner's rows in jobs hold, counted from the rows themselves. */
async function rowsOf(api: ApiFixture, ownerId: string): Promise<Kept> {
  const { rows } = await api.db.query<{ jobs: string; bytes: string }>(
    'SELECT count(*) AS jobs, COALESCE(sum(COALESCE(input_bytes, 0) + COALESCE(result_bytes, 0)), 0) AS bytes FROM jobs WHERE owner_id = $1',
    [ownerId],
  );
  return { jobs: Number(rows[0]?.jobs), bytes: Number(rows[0]?.bytes) };
}

/** The platform CLI pointed at the fixture's data stores. */
const cliEnvOf = (api: ApiFixture) => ({ DATABASE_URL: api.env.DATABASE_URL, REDIS_URL: api.env.REDIS_URL, QUEUE_PREFIX: api.env.QUEUE_PREFIX, OBJECT_STORE_DIR: api.env.OBJECT_STORE_DIR, LOG_LEVEL: 'error' });

const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

async function untilFinished(api: ApiFixture, token: string, ids: string[]): Promise<Job[]> {
  return Promise.all(
    ids.map((id) =>
      waitFor(`job ${id} to finish`, async () => {
        const job = await call<Job>(api, `/v1/jobs/${id}`, { token });
        return ['succeeded', 'failed'].includes(job.body.status) && job.body;
      }, 60_000),
    ),
  );
}

describe('what each user keeps in the jobs table', () => {
  let api: ApiFixture;
  let worker: WorkerProcess | undefined;

  beforeAll(async () => {
    api = await startApi();
    worker = await startWorkerFor(api);
  });
  afterAll(async () => {
    await worker?.stop();
    await api?.close();
  });

  it('counts jobs and tasks with their inputs and results as JSON, less what is deleted or purged, exactly under concurrent writes', async () => {
    const users = await Promise.all([signUp(api), signUp(api), signUp(api), signUp(api)]);
    const [first, second] = users;
    const before = await Promise.all(users.map((user) => rowsOf(api, user.userId)));
    // Many submits at once from four users: batch INSERTs in flight together, each adding to its owners' usage.
    const payloads = Array.from({ length: 240 }, (_, index) => `é✓ ${'x'.repeat(index * 7)} 🚀 ${index}`);
    const submitted = await Promise.all(
      payloads.map(async (payload, index) => {
        const user = users[index % users.length] as (typeof users)[number];
        const response = await call<Job>(api, '/v1/jobs', { token: user.token, json: { type: 'echo', input: { payload } } });
        expect(response.status).toBe(202);
        return { user, id: response.body.id };
      }),
    );
    const fanOut = await call<Job>(api, '/v1/jobs', { token: first.token, json: { type: 'echo.batch', input: { count: 4 } } });
    expect(fanOut.status).toBe(202);

    const finished = await Promise.all(users.map((user) => untilFinished(api, user.token, submitted.filter((entry) => entry.user === user).map((entry) => entry.id))));
    await untilFinished(api, first.token, [fanOut.body.id]);
    // Each echo job counts its input and its result as the JSON the API sends them in.
    for (const [index, user] of users.entries()) {
      const jobs = finished[index] as Job[];
      expect(jobs.every((job) => job.status === 'succeeded')).toBe(true);
      const expected = jobs.reduce((sum, job) => sum + jsonBytes(job.input) + jsonBytes(job.result), 0);
      const grown = { jobs: (await rowsOf(api, user.userId)).jobs - (before[index] as Kept).jobs, bytes: (await rowsOf(api, user.userId)).bytes - (before[index] as Kept).bytes };
      expect(grown).toEqual(user === first ? { jobs: 60 + 5, bytes: expect.any(Number) } : { jobs: 60, bytes: expected });
      expect(await usageOf(api, user.userId)).toEqual(await rowsOf(api, user.userId));
    }

    // Deleted by their owner: a plain job, and the fan-out job with its tasks.
    const deleted = submitted.filter((entry) => entry.user === second).slice(0, 5);
    for (const { id } of deleted) expect((await call(api, `/v1/jobs/${id}`, { method: 'DELETE', token: second.token })).status).toBe(204);
    expect((await call(api, `/v1/jobs/${fanOut.body.id}`, { method: 'DELETE', token: first.token })).status).toBe(204);
    expect(await usageOf(api, second.userId)).toEqual(await rowsOf(api, second.userId));
    expect(await usageOf(api, first.userId)).toEqual(await rowsOf(api, first.userId));
    expect((await usageOf(api, first.userId)).jobs).toBe((before[0] as Kept).jobs + 60);

    // Purged for their age, from the CLI.
    await api.db.query("UPDATE jobs SET finished_at = now() - interval '2 days' WHERE owner_id = $1 AND status = 'succeeded'", [first.userId]);
    const purged = await platform(['purge', '--retention-days', '1', '--json'], cliEnvOf(api));
    expect(purged.stderr).toBe('');
    expect(await rowsOf(api, first.userId)).toEqual({ jobs: 0, bytes: 0 });
    expect(await usageOf(api, first.userId)).toEqual({ jobs: 0, bytes: 0 });
    for (const user of users) expect(await usageOf(api, user.userId)).toEqual(await rowsOf(api, user.userId));
  });

  it('recounts from the jobs table what was changed by hand, from the CLI, and lists the owners it corrected', async () => {
    const user = await signUp(api);
    const job = await call<Job>(api, '/v1/jobs', { token: user.token, json: { type: 'echo', input: { payload: 'counted' } } });
    expect(job.status).toBe(202);
    await untilFinished(api, user.token, [job.body.id]);
    const right = await rowsOf(api, user.userId);
    expect(await usageOf(api, user.userId)).toEqual(right);
    // An operator's hand-made DELETE bypasses the usage; so does a restore of the jobs table alone.
    await api.db.query('UPDATE job_usage SET bytes = bytes + 1000, jobs = jobs + 3 WHERE (owner_id, shard) IN (SELECT owner_id, shard FROM job_usage WHERE owner_id = $1 LIMIT 1)', [user.userId]);
    const wrong = await usageOf(api, user.userId);
    expect(wrong).toEqual({ jobs: right.jobs + 3, bytes: right.bytes + 1000 });

    const recount = await platform(['jobs', 'usage', '--recount', '--limit', '1000', '--json'], cliEnvOf(api));
    expect(recount.stderr).toBe('');
    const answer = JSON.parse(recount.stdout) as { owners: { ownerId: string; email: string; jobs: number; bytes: number }[]; corrected: { ownerId: string; was: Kept; is: Kept }[] };
    expect(answer.corrected).toContainEqual({ ownerId: user.userId, was: wrong, is: right });
    expect(answer.owners).toContainEqual({ ownerId: user.userId, email: user.email, ...right });
    expect(await usageOf(api, user.userId)).toEqual(right);

    const again = await platform(['jobs', 'usage', '--recount'], cliEnvOf(api));
    expect(again.stdout).toMatch(/^recounted: every owner's usage was right\n/);
    expect(again.stdout).toContain(user.userId);
  });
});

describe('the job quotas', () => {
  let api: ApiFixture;
  let worker: WorkerProcess | undefined;

  beforeAll(async () => {
    api = await startApi({ env: { QUOTA_JOBS: '6', QUOTA_JOB_BYTES: '4000' } });
    worker = await startWorkerFor(api);
  });
  afterAll(async () => {
    await worker?.stop();
    await api?.close();
  });

  const submit = (token: string, input: unknown, type = 'echo') => call<Job & { title: string; detail: string }>(api, '/v1/jobs', { token, json: { type, input } });

  it('refuses a submit that would keep more than QUOTA_JOBS jobs with 403 problem+json, writes nothing, and lets other users submit', async () => {
    const owner = await signUp(api);
    const other = await signUp(api);
    const kept = (await rowsOf(api, owner.userId)).jobs;
    const accepted: string[] = [];
    for (let index = kept; index < 6; index += 1) {
      const response = await submit(owner.token, { payload: `${index}` });
      expect(response.status).toBe(202);
      accepted.push(response.body.id);
    }
    const refused = await submit(owner.token, { payload: 'one too many' });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.body.detail).toMatch(/job quota reached: 6 of 6 jobs kept/);
    expect(await rowsOf(api, owner.userId)).toMatchObject({ jobs: 6 });
    // A fan-out job counts itself and its tasks.
    const otherKept = (await rowsOf(api, other.userId)).jobs;
    expect((await submit(other.token, { count: 6 - otherKept }, 'echo.batch')).status).toBe(403);
    expect((await submit(other.token, { count: 5 - otherKept }, 'echo.batch')).status).toBe(202);
    expect(await rowsOf(api, other.userId)).toMatchObject({ jobs: 6 });

    // Each user sees where they stand against every quota, and only their own (once the results are in, it stands still).
    await untilFinished(api, owner.token, accepted);
    const upload = await call(api, '/v1/files', { token: owner.token, body: 'twelve bytes', headers: { 'content-type': 'text/plain' } });
    expect(upload.status).toBe(201);
    const usage = await call<Record<string, { used: number; limit: number }>>(api, '/v1/usage', { token: owner.token });
    expect(usage.status).toBe(200);
    expect(usage.body).toEqual({
      jobs: { used: 6, limit: 6 },
      jobBytes: { used: (await rowsOf(api, owner.userId)).bytes, limit: 4000 },
      queuedJobs: { used: 0, limit: api.env.QUOTA_QUEUED_JOBS },
      files: { used: 1, limit: api.env.QUOTA_FILES },
      storedBytes: { used: 12, limit: api.env.QUOTA_STORED_BYTES },
    });
    expect((await call<Record<string, { used: number }>>(api, '/v1/usage', { token: other.token })).body.files).toEqual({ used: 0, limit: api.env.QUOTA_FILES });
    expect((await call(api, '/v1/usage')).status).toBe(401);
  });

  it('counts results too, and takes submits again once the owner deletes finished jobs', async () => {
    const owner = await signUp(api);
    // Near the byte quota: the usage is read again every second, so stored results count from the next read.
    const first = await submit(owner.token, { payload: 'r'.repeat(2_200) });
    expect(first.status).toBe(202);
    await untilFinished(api, owner.token, [first.body.id]);
    expect((await rowsOf(api, owner.userId)).bytes).toBeGreaterThan(4_400);
    const kept = await rowsOf(api, owner.userId);
    // The usage the API read before the result was stored is trusted for a second near the quota.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    // Its input alone would leave room for this one; its result does not.
    const refused = await submit(owner.token, { payload: 'small' });
    expect(refused.status).toBe(403);
    expect(refused.body.detail).toMatch(/job data quota reached: the jobs kept hold \d+ of 4000 bytes of inputs and results/);
    expect(await rowsOf(api, owner.userId)).toEqual(kept);

    expect((await call(api, `/v1/jobs/${first.body.id}`, { method: 'DELETE', token: owner.token })).status).toBe(204);
    const accepted = await waitFor('the freed room to count', async () => {
      const response = await submit(owner.token, { payload: 'small' });
      return response.status === 202 && response;
    }, 10_000);
    expect(accepted.body.status).toBe('queued');
    expect(await usageOf(api, owner.userId)).toEqual(await rowsOf(api, owner.userId));
  });
});

describe('migration 0010 on a database that already keeps jobs', () => {
  it('counts the jobs already kept, with the input sizes recorded since 0009, and nothing of earlier inputs or of results', async () => {
    const { databaseUrl } = await useSharedServices();
    const db = new Pool({ connectionString: databaseUrl });
    try {
      // The database as it stood before 0010.
      await db.query("DROP TABLE job_usage; ALTER TABLE jobs DROP COLUMN result_bytes; DELETE FROM schema_migrations WHERE name = '0010_job_usage.sql'");
      const owners = [randomUUID(), randomUUID()];
      for (const owner of owners) await db.query("INSERT INTO users (id, email, password_hash) VALUES ($1, $2, 'not-a-hash')", [owner, `${owner}@example.test`]);
      const insert = (owner: string, inputBytes: number | null, status: string) =>
        db.query(
          "INSERT INTO jobs (id, owner_id, type, input, input_bytes, status, max_attempts, result) VALUES ($1, $2, 'echo', '{\"payload\":\"x\"}', $3, $4, 1, CASE WHEN $4 = 'succeeded' THEN '{\"payload\":\"x\"}'::jsonb END)",
          [randomUUID(), owner, inputBytes, status],
        );
      await insert(owners[0] as string, 15, 'succeeded');
      await insert(owners[0] as string, 2_000, 'queued');
      await insert(owners[0] as string, null, 'succeeded');
      await insert(owners[1] as string, null, 'failed');

      expect(await runMigrations(databaseUrl)).toEqual(['0010_job_usage.sql']);
      const { rows } = await db.query<{ owner_id: string; jobs: string; bytes: string }>('SELECT owner_id, sum(jobs) AS jobs, sum(bytes) AS bytes FROM job_usage GROUP BY owner_id');
      expect(Object.fromEntries(rows.map((row) => [row.owner_id, { jobs: Number(row.jobs), bytes: Number(row.bytes) }]))).toEqual({
        [owners[0] as string]: { jobs: 3, bytes: 2_015 },
        [owners[1] as string]: { jobs: 1, bytes: 0 },
      });
    } finally {
      await db.end();
    }
  });
});
