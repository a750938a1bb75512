import { randomUUID } from 'node:crypto';
import { Client, Pool } from 'pg';
import { listMigrations, pendingMigrations, runMigrations } from '../../../services/core/db/migrate';
import { LOST_ATTEMPT_REASON, MAX_DEFERRALS } from '../../../services/core/jobs/lifecycle';
import { startRedis, type RedisServer } from '../../harness/redis';
import { SHARED_ENV, useSharedServices } from '../../harness/shared';
import { createEngineFixture, handedOver, submission, waitFor, type EngineFixture } from './fixture';

/** A database with nothing in it on the run's shared server (useSharedServices hands out migrated ones). */
async function createEmptyDatabase(): Promise<string> {
  const serverUrl = process.env[SHARED_ENV.postgresUrl];
  if (!serverUrl) throw new Error(`${SHARED_ENV.postgresUrl} is not set`);
  const name = `migrate_${randomUUID().replaceAll('-', '')}`;
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

describe('job engine: recovery', () => {
  let redis: RedisServer | undefined;
  let fx: EngineFixture | undefined;

  afterEach(async () => {
    await fx?.close();
    await redis?.destroy();
    fx = undefined;
    redis = undefined;
  });

  it('Redis restarted empty while jobs are queued: the sweep re-enqueues and every accepted job finishes', async () => {
    redis = await startRedis();
    const shared = await useSharedServices();
    fx = await createEngineFixture({
      servers: { databaseUrl: shared.databaseUrl, redisUrl: redis.url, redisPrefix: `{t-${randomUUID()}}` },
      core: { relaySweep: true },
    });
    const current = fx;
    const accepted = await Promise.all(
      Array.from({ length: 50 }, (_, index) => current.core.jobs.submit(submission({ ownerId: current.ownerId, type: 'echo', input: { payload: index } }))),
    );
    const ids = accepted.map((result) => result.job.id);
    await handedOver(current, ids);

    await redis.restartEmpty();
    await waitFor('Redis to come back', async () => (await current.core.redis.client.ping()) === 'PONG');
    // The enqueue connection fails fast rather than queueing commands: wait until it has reconnected too.
    await waitFor('the enqueue connection to reconnect', async () => current.core.redis.producer.status === 'ready');
    expect((await current.core.relay.queue.getJobCounts('wait')).wait).toBe(0);

    await current.startRunner();
    await waitFor(
      'every accepted job to succeed',
      async () => {
        const { count } = await current.one<{ count: number }>(
          "SELECT count(*)::int AS count FROM jobs WHERE id = ANY($1::uuid[]) AND status = 'succeeded'",
          [ids],
        );
        return count === 50;
      },
      30_000,
    );
    const { count: doubleCompleted } = await current.one<{ count: number }>(
      "SELECT count(*)::int AS count FROM (SELECT job_id FROM job_events WHERE to_status = 'succeeded' GROUP BY job_id HAVING count(*) > 1) AS twice",
    );
    expect(doubleCompleted).toBe(0);
    const swept = (await current.core.metrics?.relayEnqueued.get())?.values.find((value) => value.labels.path === 'sweep');
    expect(swept?.value).toBe(50);
  });

  it('reclaims a running job whose worker and Redis job are both gone, without charging the lost attempt', async () => {
    fx = await createEngineFixture();
    // Its only attempt: were the loss charged to it, it would be dead-lettered for what Redis did.
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: 'lost' }, maxAttempts: 1 }));
    // A worker started it, then the worker and Redis lost it together.
    await handedOver(fx, job.id);
    await fx.core.relay.queue.remove(job.id);
    await fx.query("UPDATE jobs SET status = 'running', attempts = 1, updated_at = now() - interval '1 hour' WHERE id = $1", [job.id]);

    expect(await fx.core.admin.reconcile()).toMatchObject({ reenqueued: 0, retried: 1, failed: 0, abandoned: 0 });
    // Counted as a worker's deferral is.
    const deferred = (await fx.core.metrics?.jobsDeferred.get())?.values;
    expect(deferred).toEqual([{ value: 1, labels: { type: 'echo', dependency: 'Redis' } }]);
    await fx.startRunner();
    const current = fx;
    await waitFor('the reclaimed job to succeed', async () => (await current.core.jobs.get(current.ownerId, job.id)).status === 'succeeded');
    expect(await fx.core.jobs.get(fx.ownerId, job.id)).toMatchObject({ attempts: 1 });
    expect(await fx.query('SELECT deferrals FROM jobs WHERE id = $1', [job.id])).toEqual([{ deferrals: 1 }]);
    const events = await fx.core.jobs.events(fx.ownerId, job.id);
    expect(events.map((event) => event.to)).toEqual(['queued', 'queued', 'running', 'succeeded']);
    // The reclaim is audited as a worker's deferral is: the attempt failed on Redis, not on the job.
    expect(events[1]).toMatchObject({
      from: 'running',
      to: 'queued',
      detail: `attempt 1 not charged: it failed on Redis, not on the job (${LOST_ATTEMPT_REASON}); deferral 1 of ${MAX_DEFERRALS}, running again in 0 ms`,
    });
  });

  it('migrations apply once, even from concurrent starters, and report nothing pending', async () => {
    const databaseUrl = await createEmptyDatabase();
    const results = await Promise.all([runMigrations(databaseUrl), runMigrations(databaseUrl), runMigrations(databaseUrl)]);
    const all = await listMigrations();
    expect(results.flat().sort()).toEqual(all);
    expect(await runMigrations(databaseUrl)).toEqual([]);
    const client = new Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name');
      expect(rows.map((row) => row.name)).toEqual(all);
    } finally {
      await client.end();
    }
    const pool = new Pool({ connectionString: databaseUrl });
    try {
      expect(await pendingMigrations(pool)).toEqual([]);
    } finally {
      await pool.end();
    }
  });
});
