/**
 * What runbooks promise an operator reading `platform` output during a drill against
 * `npm start`:
 * - JobBacklogAging: on a paused queue, doctor's flow check said "workers are making
 *   progress; consider scaling workers" for the minute after the pause (the transitions it
 *   saw were the jobs the workers held when it was paused). More workers take nothing from a
 *   paused queue; the way out is `platform queues resume`.
 */
import { createEngineFixture, handedOver, submission, waitFor, type EngineFixture } from '../engine/fixture';
import { cliEnvFor, platform } from './platform-cli';

type Check = { check: string; verdict: string; detail: string };

describe('runbook drill: what platform commands tell the operator', () => {
  let fixture: EngineFixture;
  let cliEnv: Record<string, string>;

  beforeAll(async () => {
    fixture = await createEngineFixture();
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
});
