import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { MAX_DEFERRALS } from '../../../services/core/jobs/lifecycle';
import { startRedis } from '../../harness/redis';
import { createEngineFixture, handedOver, queueSharedEntry, submission, waitFor, type EngineFixture } from '../engine/fixture';
import { cliEnvFor, platform } from './platform-cli';

describe('platform CLI', () => {
  let fixture: EngineFixture;
  let cliEnv: Record<string, string>;

  beforeAll(async () => {
    fixture = await createEngineFixture();
    cliEnv = cliEnvFor(fixture.env);
  });
  afterAll(() => fixture?.close());

  it('names a missing variable and exits 2 before connecting', async () => {
    const run = await platform(['queues', 'stats'], { REDIS_URL: 'redis://127.0.0.1:1' });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('DATABASE_URL is required');
  });

  it('rejects bad flags with exit 2 and a message naming them', async () => {
    const badId = await platform(['jobs', 'show', 'not-a-uuid'], cliEnv);
    expect(badId.code).toBe(2);
    expect(badId.stderr).toContain('job id must be a UUID');
    const badStatus = await platform(['jobs', 'list', '--status', 'done'], cliEnv);
    expect(badStatus.code).toBe(2);
    expect(badStatus.stderr).toContain('--status must be one of');
    const unknown = await platform(['jobs', 'explode'], cliEnv);
    expect(unknown.code).toBe(2);
  });

  it('stops quietly with status 0 when the reader of its output goes away (`platform … | head -1`)', async () => {
    for (const args of [['jobs', 'list'], ['jobs', 'list', '--json'], ['--help']]) {
      const run = await platform(args, cliEnv, undefined, { readerGone: true });
      expect({ args, code: run.code, stderr: run.stderr }).toEqual({ args, code: 0, stderr: '' });
    }
  });

  it('reports migrations as applied after `migrate`', async () => {
    const apply = await platform(['migrate'], { DATABASE_URL: cliEnv.DATABASE_URL });
    expect(apply.code).toBe(0);
    expect(apply.stdout).toContain('up to date');
    const status = await platform(['migrate', '--status', '--json'], { DATABASE_URL: cliEnv.DATABASE_URL });
    expect(status.code).toBe(0);
    const parsed = JSON.parse(status.stdout) as { pending: string[]; migrations: { state: string }[] };
    expect(parsed.pending).toEqual([]);
    expect(parsed.migrations.length).toBeGreaterThan(0);
  });

  it('lists and shows jobs of every owner, and cancels one', async () => {
    const { job } = await fixture.core.jobs.submit(submission({ ownerId: fixture.ownerId, type: 'echo', input: { payload: 'cli' } }));
    const list = await platform(['jobs', 'list', '--json', '--status', 'queued'], cliEnv);
    expect(list.code).toBe(0);
    const listed = JSON.parse(list.stdout) as { items: { id: string; ownerId: string }[] };
    expect(listed.items.map((item) => item.id)).toContain(job.id);
    expect(listed.items.find((item) => item.id === job.id)?.ownerId).toBe(fixture.ownerId);
    const ofOwner = JSON.parse((await platform(['jobs', 'list', '--json', '--owner', fixture.ownerId], cliEnv)).stdout) as { items: { id: string; ownerId: string }[] };
    expect(ofOwner.items.map((item) => item.id)).toContain(job.id);
    expect(new Set(ofOwner.items.map((item) => item.ownerId))).toEqual(new Set([fixture.ownerId]));
    const ofNobody = JSON.parse((await platform(['jobs', 'list', '--json', '--owner', randomUUID()], cliEnv)).stdout) as { items: unknown[] };
    expect(ofNobody.items).toEqual([]);

    const show = await platform(['jobs', 'show', job.id], cliEnv);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('echo');
    expect(show.stdout).toContain('events:');

    const cancel = await platform(['jobs', 'cancel', job.id], cliEnv);
    expect(cancel.code).toBe(0);
    const [row] = await fixture.query<{ status: string }>('SELECT status FROM jobs WHERE id = $1', [job.id]);
    expect(row?.status).toBe('cancelled');

    const again = await platform(['jobs', 'cancel', job.id], cliEnv);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/platform: .*/);
  });

  it('shows a fan-out job with its counts per task status', async () => {
    const { job } = await fixture.core.jobs.submit(submission({ ownerId: fixture.ownerId, type: 'echo.batch', input: { count: 4, failurePolicy: { mode: 'tolerate', maxFailed: 1 } } }));
    const show = await platform(['jobs', 'show', job.id], cliEnv);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('tasks (tolerate 1 failed):');
    expect(show.stdout).toMatch(/TOTAL\s+QUEUED\s+RUNNING\s+SUCCEEDED\s+FAILED\s+CANCELLED\n4\s+4\s+0\s+0\s+0\s+0/);
    const json = JSON.parse((await platform(['jobs', 'show', job.id, '--json'], cliEnv)).stdout) as { job: { status: string; tasks: { total: number } } };
    expect(json.job).toMatchObject({ status: 'waiting', tasks: { total: 4, queued: 4 } });
  });

  it('replays a dead letter back into the queue', async () => {
    const { job } = await fixture.core.jobs.submit(submission({ ownerId: fixture.ownerId, type: 'echo', input: {} }));
    await fixture.query("UPDATE jobs SET status = 'failed', attempts = max_attempts, error = 'boom', finished_at = now() WHERE id = $1", [job.id]);

    const list = await platform(['dlq', 'list', '--json'], cliEnv);
    expect((JSON.parse(list.stdout) as { items: { id: string }[] }).items.map((item) => item.id)).toContain(job.id);

    const replay = await platform(['dlq', 'replay', job.id], cliEnv);
    expect(replay.code).toBe(0);
    const [row] = await fixture.query<{ status: string }>('SELECT status FROM jobs WHERE id = $1', [job.id]);
    expect(row?.status).toBe('queued');
    const held = await fixture.core.relay.queue.getJob(job.id);
    expect(held?.id).toBe(job.id);

    const both = await platform(['dlq', 'replay', job.id, '--all'], cliEnv);
    expect(both.code).toBe(2);
  });

  it('reconcile says what it did to how many jobs, by kind', async () => {
    // One at a time, so each job gets a queue entry of its own (echo jobs submitted together share one).
    const submit = async (payload: string) => {
      const { job } = await fixture.core.jobs.submit(submission({ ownerId: fixture.ownerId, type: 'echo', input: { payload } }));
      await handedOver(fixture, job.id);
      return job.id;
    };
    const [lost, retried, lastAttempt, crashLooped] = [await submit('lost'), await submit('retried'), await submit('last attempt'), await submit('crash loop')];
    // Redis lost a queued job; two running jobs lost their worker and their Redis entry, one with no deferral left;
    // BullMQ gave up on a job whose runs kept ending with their worker (its deferred failure, `defa`).
    for (const id of [lost, retried, lastAttempt]) await fixture.core.relay.queue.remove(id);
    await fixture.core.redis.client.hset(`${fixture.env.QUEUE_PREFIX}:jobs:${crashLooped}`, 'defa', 'job stalled more than allowable limit');
    // The sweep only takes jobs older than its grace period, so a job being enqueued right now is not raced.
    await fixture.query("UPDATE jobs SET updated_at = now() - interval '10 minutes' WHERE id = ANY($1::uuid[])", [[lost, crashLooped]]);
    await fixture.query("UPDATE jobs SET status = 'running', attempts = 1, max_attempts = 3, updated_at = now() - interval '1 hour' WHERE id = $1", [retried]);
    await fixture.query("UPDATE jobs SET status = 'running', attempts = 1, max_attempts = 3, deferrals = $2, updated_at = now() - interval '1 hour' WHERE id = $1", [lastAttempt, MAX_DEFERRALS]);

    const run = await platform(['reconcile'], cliEnv);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^checked \d+ queued job\(s\) against Redis, then \d+ at a second look$/m);
    expect(run.stdout).toMatch(/^re-enqueued +1 queued job\(s\) that Redis had lost$/m);
    expect(run.stdout).toMatch(/^retried +1 running job\(s\) whose worker and Redis entry were both gone/m);
    expect(run.stdout).toMatch(/^failed +1 running job\(s\) like those that had no deferral left/m);
    expect(run.stdout).toMatch(/^dead-lettered +1 crash-looping job\(s\)/m);
    expect(run.stdout).toContain('platform dlq list');
    const statuses = await fixture.query<{ id: string; status: string }>('SELECT id, status FROM jobs WHERE id = ANY($1::uuid[])', [[lost, retried, lastAttempt, crashLooped]]);
    expect(Object.fromEntries(statuses.map((row) => [row.id, row.status]))).toEqual({ [lost]: 'queued', [retried]: 'queued', [lastAttempt]: 'failed', [crashLooped]: 'failed' });
    expect((await fixture.core.relay.queue.getJob(lost))?.id).toBe(lost);

    // Nothing is left: a second run repairs nothing, and says so in JSON too.
    const again = await platform(['reconcile', '--json'], cliEnv);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ reenqueued: 0, retried: 0, failed: 0, abandoned: 0, pending: 0, sweptElsewhere: false });
  });

  it('queues stats reads depth by state and statuses', async () => {
    await fixture.core.jobs.submit(submission({ ownerId: fixture.ownerId, type: 'echo', input: { payload: 'counted' } }));
    const run = await platform(['queues', 'stats', '--json'], cliEnv);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const stats = JSON.parse(run.stdout) as { counts: Record<string, number>; statuses: Record<string, number> };
    expect(Object.keys(stats.counts).sort()).toEqual(['active', 'delayed', 'failed', 'prioritized', 'waiting']);
    expect(stats.statuses.queued).toBeGreaterThanOrEqual(1);
  });

  it('queues stats counts entries in Redis and jobs in PostgreSQL, and says so: jobs sharing an entry are not jobs Redis lost', async () => {
    type Stats = { counts: { waiting: number }; statuses: { queued: number }; relayLagSeconds: number };
    const stats = async () => JSON.parse((await platform(['queues', 'stats', '--json'], cliEnv)).stdout) as Stats;
    const before = await stats();
    await queueSharedEntry(fixture, ['one', 'two', 'three']);
    const after = await stats();
    expect({ entries: after.counts.waiting - before.counts.waiting, jobs: after.statuses.queued - before.statuses.queued, lag: after.relayLagSeconds }).toEqual({ entries: 1, jobs: 3, lag: 0 });
    const text = (await platform(['queues', 'stats'], cliEnv)).stdout;
    expect(text).toContain('in Redis (BullMQ queue entries; jobs of a type that shares entries, submitted together, count one):');
    expect(text).toContain('in PostgreSQL (jobs; the source of truth):');
  });

  it('doctor fails without a live worker and passes once one reports', async () => {
    const sick = await platform(['doctor', '--json'], cliEnv);
    expect(sick.code).toBe(1);
    const sickReport = JSON.parse(sick.stdout) as { healthy: boolean; checks: { check: string; verdict: string; detail: string }[] };
    expect(sickReport.healthy).toBe(false);
    // Workers delete their heartbeat when they stop, so an empty hash cannot tell "never ran" from "stopped".
    expect(sickReport.checks.find((check) => check.check === 'workers')).toEqual({ check: 'workers', verdict: 'fail', detail: expect.stringMatching(/^no worker is reporting a heartbeat now \(/) });
    expect(sickReport.checks.find((check) => check.check === 'postgres')?.verdict).toBe('ok');
    expect(sickReport.checks.find((check) => check.check === 'migrations')?.verdict).toBe('ok');
    expect(sickReport.checks.find((check) => check.check === 'clock')).toEqual({ check: 'clock', verdict: 'ok', detail: expect.stringMatching(/^within \d+ ms of this host's$/) });

    const runner = await fixture.startRunner();
    await fixture.core.redis.client.hset(`${fixture.env.QUEUE_PREFIX}:workers:heartbeat`, runner.id, Date.now());
    // Let the worker drain what the earlier tests queued, so the flow check sees nothing stuck.
    await waitFor('the queue to drain', async () => (await fixture.query<{ n: number }>("SELECT count(*)::int AS n FROM jobs WHERE status = 'queued'"))[0]?.n === 0);

    const well = await platform(['doctor'], cliEnv);
    expect(well.stdout).toContain('workers');
    expect(well.code).toBe(0);
    expect(well.stdout).toContain('healthy');
  });

  it('doctor checks the object store with a probe object, and says when the queue is paused', async () => {
    const checkOf = async (env: Record<string, string | undefined>, name: string) => {
      const run = await platform(['doctor', '--json'], env);
      return (JSON.parse(run.stdout) as { checks: { check: string; verdict: string; detail: string }[] }).checks.find((check) => check.check === name);
    };
    expect(await checkOf(cliEnv, 'object-store')).toEqual({ check: 'object-store', verdict: 'ok', detail: 'writes and reads back a probe object' });
    // The probe leaves nothing behind, not even its directory.
    expect(existsSync(path.join(fixture.env.OBJECT_STORE_DIR, '_check'))).toBe(false);

    // A store the CLI cannot write: its directory's parent is a file.
    const scratch = mkdtempSync(path.join(os.tmpdir(), 'pk-doctor-'));
    try {
      writeFileSync(path.join(scratch, 'not-a-directory'), '');
      expect(await checkOf({ ...cliEnv, OBJECT_STORE_DIR: path.join(scratch, 'not-a-directory', 'objects') }, 'object-store')).toEqual({
        check: 'object-store',
        verdict: 'fail',
        detail: expect.stringMatching(/^failed: .*ENOTDIR/),
      });
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }

    expect(await checkOf(cliEnv, 'queue')).toEqual({ check: 'queue', verdict: 'ok', detail: 'not paused' });
    expect((await platform(['queues', 'pause'], cliEnv)).code).toBe(0);
    try {
      expect(await checkOf(cliEnv, 'queue')).toEqual({ check: 'queue', verdict: 'warn', detail: 'paused: workers take no new jobs; resume with: platform queues resume' });
    } finally {
      expect((await platform(['queues', 'resume'], cliEnv)).code).toBe(0);
    }
  });

  it('doctor fails when Redis may evict keys', async () => {
    // A Redis of its own: the run's shared one serves suites running meanwhile, whose BullMQ
    // connections would warn on stderr while its policy is changed.
    const evicting = await startRedis();
    try {
      const redis = new Redis(evicting.url, { lazyConnect: true });
      await redis.connect();
      await redis.config('SET', 'maxmemory-policy', 'allkeys-lru');
      redis.disconnect();
      const run = await platform(['doctor', '--json'], { ...cliEnv, REDIS_URL: evicting.url });
      const report = JSON.parse(run.stdout) as { checks: { check: string; verdict: string; detail: string }[] };
      expect(run.code).toBe(1);
      expect(report.checks.find((check) => check.check === 'redis-eviction')).toMatchObject({ verdict: 'fail', detail: expect.stringContaining('allkeys-lru') });
    } finally {
      await evicting.destroy();
    }
  });
});
