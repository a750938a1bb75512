/**
 * What two runbooks promise an operator reading `platform` output during a drill against
 * `npm start`:
 * - JobBacklogAging: on a paused queue, doctor's flow check said "workers are making
 *   progress; consider scaling workers" for the minute after the pause (the transitions it
 *   saw were the jobs the workers held when it was paused). More workers take nothing from a
 *   paused queue; the way out is `platform queues resume`.
 * - RedisRejectingWrites and Redis loss: `platform reconcile` run while Redis refused writes
 *   (full under noeviction) printed "re-enqueued 0" on every line and exited 0, while the
 *   accepted jobs it found missing stayed missing: "run it again until every line reports 0"
 *   then ended the procedure with nothing handed over.
 */
import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from '../../harness/redis';
import { createEngineFixture, handedOver, submission, waitFor, type EngineFixture } from '../engine/fixture';
import { cliEnvFor, platform } from './platform-cli';

type Check = { check: string; verdict: string; detail: string };

describe('runbook drill: what platform commands tell the operator', () => {
  let fixture: EngineFixture;
  let cliEnv: Record<string, string>;

  beforeAll(async () => {
    // The fixture's own relay sweeps under the same lock as reconcile: it would take some of reconcile's walks (sweptElsewhere).
    fixture = await createEngineFixture({ env: { RELAY_SWEEP_MS: '3600000' } });
    cliEnv = cliEnvFor(fixture.env);
  });
  afterAll(() => fixture?.close());

  it('doctor names a pause as the reason a backlog does not move, and does not advise more workers', async () => {
    // A worker that has just finished a job: the newest audit rows say workers made progress.
    const runner = await fixture.startRunner();
    const { job: done } = await fixture.core.jobs.submit(submission({ ownerId: fixture.ownerId, type: 'echo', input: { payload: 'before the pause' } }));
    await waitFor('the job to succeed', async () => (await fixture.one<{ status: string }>('SELECT status FROM jobs WHERE id = $1', [done.id])).status === 'succeeded');

    expect((await platform(['queues', 'pause'], cliEnv)).code).toBe(0);
    let behind: string | undefined;
    try {
      const { job } = await fixture.core.jobs.submit(submission({ ownerId: fixture.ownerId, type: 'echo', input: { payload: 'behind the pause' } }));
      behind = job.id;
      await handedOver(fixture, job.id);
      await fixture.query("UPDATE jobs SET created_at = now() - interval '10 minutes' WHERE id = $1", [job.id]);

      const run = await platform(['doctor', '--json'], cliEnv);
      const checks = (JSON.parse(run.stdout) as { checks: Check[] }).checks;
      const flow = checks.find((check) => check.check === 'flow');
      expect(flow).toEqual({ check: 'flow', verdict: 'fail', detail: expect.stringMatching(/^jobs are not flowing: 1 queued, oldest \d+ s, because the queue is paused .*platform queues resume$/) });
      expect(flow?.detail).not.toContain('scaling');
      expect(run.code).toBe(1);
    } finally {
      await runner.stop(1_000);
      expect((await platform(['queues', 'resume'], cliEnv)).code).toBe(0);
      // Nothing left queued for the next test to find.
      if (behind) expect((await platform(['jobs', 'cancel', behind], cliEnv)).code).toBe(0);
    }
  });

  describe('reconcile while Redis refuses writes', () => {
    let full: RedisServer;
    beforeAll(async () => {
      full = await startRedis();
    });
    afterAll(() => full?.destroy());

    it('says the jobs it could not hand over are still missing, exits 1, and hands them over once Redis has room', async () => {
      // An accepted job that a Redis of its own does not hold, as after a restart: the CLI is
      // pointed at that Redis, which refuses every write (noeviction, maxmemory below its use).
      const { job } = await fixture.core.jobs.submit(submission({ ownerId: fixture.ownerId, type: 'sleep', input: { ms: 1 } }));
      await fixture.query("UPDATE jobs SET updated_at = now() - interval '10 minutes' WHERE id = $1", [job.id]);
      const admin = new Redis(full.url, { lazyConnect: true });
      await admin.connect();
      try {
        await admin.config('SET', 'maxmemory-policy', 'noeviction');
        await admin.config('SET', 'maxmemory', '1');
        const env = { ...cliEnv, REDIS_URL: full.url };

        const refused = await platform(['reconcile'], env);
        expect(refused.stdout).toMatch(/^re-enqueued +0 queued job\(s\) that Redis had lost$/m);
        expect(refused.stdout).toMatch(/^refused +1 queued job\(s\) it had lost that Redis did not take when handed over/m);
        expect(refused.stdout).toMatch(/^NOT DONE: accepted jobs are still missing from Redis \(the oldest for \d+ s\): Redis did not take them .*run platform reconcile again$/m);
        expect(refused.stdout).not.toContain('another process');
        expect(refused.code).toBe(1);
        const refusedJson = await platform(['reconcile', '--json'], env);
        expect(refusedJson.code).toBe(1);
        expect(JSON.parse(refusedJson.stdout)).toMatchObject({ reenqueued: 0, refused: 1, stillMissingSeconds: expect.any(Number) });
        expect((JSON.parse(refusedJson.stdout) as { stillMissingSeconds: number }).stillMissingSeconds).toBeGreaterThan(0);

        await admin.config('SET', 'maxmemory', '0');
        const handed = await platform(['reconcile', '--json'], env);
        expect(JSON.parse(handed.stdout)).toMatchObject({ reenqueued: 1, refused: 0, stillMissingSeconds: 0 });
        expect(handed.code).toBe(0);
        expect(await admin.exists(`${fixture.env.QUEUE_PREFIX}:jobs:${job.id}`)).toBe(1);
      } finally {
        admin.disconnect();
      }
    });
  });
});
