import { createEngineFixture, type EngineFixture } from '../engine/fixture';
import { platform } from './platform-cli';

const TOKEN = 'axRDubMlp1agD6kdMYxnrGUBPLeZepCUrnA5sQa-ZwA';

/** What an operator's terminal (and its scrollback, and a pasted incident log) shows must carry no user's credential. */
describe('platform output and secrets', () => {
  let fixture: EngineFixture;
  let cliEnv: Record<string, string>;

  beforeAll(async () => {
    fixture = await createEngineFixture();
    cliEnv = { DATABASE_URL: fixture.env.DATABASE_URL, REDIS_URL: fixture.env.REDIS_URL, QUEUE_PREFIX: fixture.env.QUEUE_PREFIX, OBJECT_STORE_DIR: fixture.env.OBJECT_STORE_DIR, LOG_LEVEL: 'error' };
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
});
