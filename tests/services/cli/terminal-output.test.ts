import { createEngineFixture, submission, type EngineFixture } from '../engine/fixture';
import { cliEnvFor, platform } from './platform-cli';

const TOKEN = 'axRDubMlp1agD6kdMYxnrGUBPLeZepCUrnA5sQa-ZwA';

/**
 * What an operator's terminal shows (and its scrollback, and an incident log pasted from it):
 * no user's credential, and nothing from a user's data that the terminal would act on.
 */
describe('platform output in a terminal', () => {
  let fixture: EngineFixture;
  let cliEnv: Record<string, string>;

  beforeAll(async () => {
    fixture = await createEngineFixture();
    cliEnv = cliEnvFor(fixture.env);
  });
  afterAll(() => fixture?.close());

  it("jobs show, retry and cancel censor the input keys a type declares secret: a mail job's text carries a live reset token until the mail is handed off", async () => {
    const mail = { to: 'ada@example.com', subject: 'Reset your Platform Kit password', text: `Reset token (single use, valid for 30 minutes): ${TOKEN}` };
    const { job } = await fixture.core.jobs.submitInternal({ ownerId: fixture.ownerId, type: 'email.send', input: mail });
    await fixture.query("UPDATE jobs SET status = 'failed', attempts = max_attempts, error = 'SMTP relay refused', finished_at = now() WHERE id = $1", [job.id]);

    const shown = await platform(['jobs', 'show', job.id], cliEnv);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('"subject":"Reset your Platform Kit password"');
    expect(shown.stdout).toContain('"text":"[redacted]"');
    const json = await platform(['jobs', 'show', job.id, '--json'], cliEnv);
    expect((JSON.parse(json.stdout) as { job: { input: unknown } }).job.input).toEqual({ ...mail, text: '[redacted]' });
    const retried = await platform(['jobs', 'retry', job.id, '--json'], cliEnv);
    expect((JSON.parse(retried.stdout) as { input: unknown }).input).toEqual({ ...mail, text: '[redacted]' });
    const cancelled = await platform(['jobs', 'cancel', job.id, '--json'], cliEnv);
    expect((JSON.parse(cancelled.stdout) as { input: unknown }).input).toEqual({ ...mail, text: '[redacted]' });
    for (const run of [shown, json, retried, cancelled]) expect(`${run.stdout}${run.stderr}`).not.toContain(TOKEN);
    // Only what is shown is censored: the worker still reads the text it is to send.
    expect((await fixture.one<{ input: { text: string } }>('SELECT input FROM jobs WHERE id = $1', [job.id])).input.text).toContain(TOKEN);
  });

  // Found by an on-call walk: a cancel while Redis was away printed its warning with a twenty-line stack.
  it('jobs cancel with Redis away cancels, and warns a line per failure, saying what failed, without a stack', async () => {
    const { job } = await fixture.core.jobs.submit(submission({ ownerId: fixture.ownerId, type: 'sleep', input: { ms: 60_000 } }));

    const cancelled = await platform(['jobs', 'cancel', job.id], { ...cliEnv, REDIS_URL: 'redis://127.0.0.1:1', LOG_LEVEL: 'warn' }, undefined, { timeoutMs: 30_000 });

    expect({ code: cancelled.code, stdout: cancelled.stdout }).toEqual({ code: 0, stdout: `job ${job.id} cancelled\n` });
    const warnings = cancelled.stderr.trim().split('\n').map((line) => JSON.parse(line) as { level: string; msg: string; err?: Record<string, unknown> });
    // Its queue entry could not be removed, nor the cancel announced: each said once, with what failed.
    expect(warnings.map(({ level, msg }) => ({ level, msg }))).toEqual([
      { level: 'warn', msg: 'could not remove job from BullMQ' },
      { level: 'warn', msg: 'could not publish cancel; the worker will find the job cancelled when it reports' },
    ]);
    for (const { err } of warnings) expect(err).toEqual({ type: 'Error', message: expect.any(String) as string });
    expect(cancelled.stderr).not.toMatch(/\n\s+at /);
    expect(cancelled.stderr).not.toContain('"stack"');
  });

  it("writes control characters from users' data as escapes: an escape sequence in a job's error or input cannot clear the screen, a U+202E cannot reverse a line", async () => {
    const hostile = 'invoice\u202Efdp.exe \u001b[2J\u001b]0;owned\u0007 \u009b31m a\u2067b';
    const { job } = await fixture.core.jobs.submit(submission({ ownerId: fixture.ownerId, type: 'echo', input: { payload: hostile } }));
    await fixture.query("UPDATE jobs SET status = 'failed', attempts = max_attempts, error = $2, result = $3, finished_at = now() WHERE id = $1", [job.id, hostile, { payload: hostile }]);
    const runs = [
      await platform(['dlq', 'list'], cliEnv),
      await platform(['dlq', 'list', '--json'], cliEnv),
      await platform(['jobs', 'list', '--status', 'failed'], cliEnv),
      await platform(['jobs', 'show', job.id], cliEnv),
      await platform(['jobs', 'show', job.id, '--json'], cliEnv),
    ];
    for (const run of runs) {
      expect(run.code).toBe(0);
      // eslint-disable-next-line no-control-regex -- what must not be printed raw is control characters (newlines are the output's own)
      expect(run.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/);
      expect(run.stdout).toContain('invoice\\u202efdp.exe');
    }
    // The JSON is the same data: a program reading it gets the characters back.
    expect((JSON.parse(runs[4]?.stdout ?? '') as { job: { input: unknown; error: string } }).job).toMatchObject({ input: { payload: hostile }, error: hostile });
  });
});
