import argon2 from 'argon2';
import type { WorkerProcess } from '../../../services/worker/main';
import { call, signUp, startApi, type ApiFixture } from './fixture';
import { login, refresh } from './identity-helpers';
import { droppedResetMail } from './mail-drop';
import { startWorkerFor } from './worker-process';

const PASSWORD = 'correct horse battery staple';

/** The reset token of the newest dropped mail to `email` not seen yet. */
async function droppedResetToken(api: ApiFixture, email: string, seen: Set<string>): Promise<string> {
  return (await droppedResetMail(api, email, seen)).token;
}

describe('password reset through the dropped mail', () => {
  let api: ApiFixture;
  let worker: WorkerProcess;
  const seen = new Set<string>();

  beforeAll(async () => {
    api = await startApi({ env: { PASSWORD_RESET_TTL_SECONDS: '60' } });
    worker = await startWorkerFor(api);
  });

  afterAll(async () => {
    await worker?.stop();
    await api?.close();
  });

  it('answers 202 with no body for a known and an unknown address alike, and mails only the known one', async () => {
    const { email } = await signUp(api);
    const known = await call(api, '/v1/auth/password-reset', { json: { email } });
    const unknown = await call(api, '/v1/auth/password-reset', { json: { email: 'nobody-here@example.com' } });
    expect([known.status, known.text]).toEqual([202, '']);
    expect([unknown.status, unknown.text]).toEqual([202, '']);
    const { token, link } = await droppedResetMail(api, email, seen);
    // The console's reset page, the token in the fragment: browsers never send it to a server.
    expect(link).toBe(`${api.env.PUBLIC_URL}/reset#token=${token}`);
    const { rows } = await api.db.query<{ count: number }>("SELECT count(*)::int AS count FROM jobs WHERE type = 'email.send' AND input->>'to' = 'nobody-here@example.com'");
    expect(rows[0]?.count).toBe(0);
  });

  it('sets the new password, ends every session, and refuses the token a second time', async () => {
    const { email } = await signUp(api);
    const session = await login(api, email, PASSWORD);
    await call(api, '/v1/auth/password-reset', { json: { email } });
    const token = await droppedResetToken(api, email, seen);
    const confirmed = await call(api, '/v1/auth/password-reset/confirm', { json: { token, password: 'a brand new passphrase' } });
    expect(confirmed.status).toBe(204);
    expect((await call(api, '/v1/auth/me', { token: session.accessToken })).status).toBe(401);
    expect((await refresh(api, session.refresh)).status).toBe(401);
    expect((await call(api, '/v1/auth/login', { json: { email, password: PASSWORD } })).status).toBe(401);
    expect((await call(api, '/v1/auth/login', { json: { email, password: 'a brand new passphrase' } })).status).toBe(200);
    const again = await call(api, '/v1/auth/password-reset/confirm', { json: { token, password: 'yet another passphrase' } });
    expect(again.status).toBe(400);
    expect(again.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(api.logLines.some((line) => line.kind === 'password_reset')).toBe(true);
    expect(JSON.stringify(api.logLines)).not.toContain(token);
  });

  it('invalidates an earlier token when a new one is asked for, and refuses an expired one', async () => {
    const { email } = await signUp(api);
    await call(api, '/v1/auth/password-reset', { json: { email } });
    const earlier = await droppedResetToken(api, email, seen);
    await call(api, '/v1/auth/password-reset', { json: { email } });
    const later = await droppedResetToken(api, email, seen);
    expect((await call(api, '/v1/auth/password-reset/confirm', { json: { token: earlier, password: 'a brand new passphrase' } })).status).toBe(400);
    await api.db.query("UPDATE password_reset_tokens SET expires_at = now() - interval '1 second' WHERE used_at IS NULL");
    expect((await call(api, '/v1/auth/password-reset/confirm', { json: { token: later, password: 'a brand new passphrase' } })).status).toBe(400);
    expect((await call(api, '/v1/auth/login', { json: { email, password: PASSWORD } })).status).toBe(200);
  });

  it('lifts the login lockout that failed guesses put on the account: the new password signs in at once', async () => {
    const { email } = await signUp(api);
    for (let attempt = 0; attempt < api.env.LOGIN_FAILURES_BEFORE_LOCKOUT; attempt += 1) {
      expect((await call(api, '/v1/auth/login', { json: { email, password: 'somebody guessing' } })).status).toBe(401);
    }
    expect((await call(api, '/v1/auth/login', { json: { email, password: PASSWORD } })).status).toBe(429);
    await call(api, '/v1/auth/password-reset', { json: { email } });
    const token = await droppedResetToken(api, email, seen);
    expect((await call(api, '/v1/auth/password-reset/confirm', { json: { token, password: 'a brand new passphrase' } })).status).toBe(204);
    expect((await call(api, '/v1/auth/login', { json: { email, password: 'a brand new passphrase' } })).status).toBe(200);
  });

  it('starts no session for a sign-in with the old password that was still being checked when the reset committed', async () => {
    const { email, userId } = await signUp(api);
    // A hash that takes a second or more to check: the sign-in reads it, and the reset commits while it is checked.
    const slowHash = await argon2.hash(PASSWORD, { type: argon2.argon2id, memoryCost: 19_456, timeCost: 60, parallelism: 1 });
    await api.db.query('UPDATE users SET password_hash = $2 WHERE id = $1', [userId, slowHash]);
    await call(api, '/v1/auth/password-reset', { json: { email } });
    const token = await droppedResetToken(api, email, seen);

    let answered = false;
    const signIn = call(api, '/v1/auth/login', { json: { email, password: PASSWORD } }).finally(() => (answered = true));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await call(api, '/v1/auth/password-reset/confirm', { json: { token, password: 'a brand new passphrase' } })).status).toBe(204);
    // Otherwise the sign-in ran wholly before the reset, and this test proved nothing.
    expect(answered).toBe(false);

    const old = await signIn;
    expect(old.status).toBe(401);
    expect(old.headers.getSetCookie()).toEqual([]);
    const { rows } = await api.db.query<{ live: number }>('SELECT count(*)::int AS live FROM sessions WHERE user_id = $1 AND revoked_at IS NULL', [userId]);
    expect(rows[0]?.live).toBe(0);
  });

  it('never shows the reset mail in the user\'s own jobs', async () => {
    const { email, token } = await signUp(api);
    await call(api, '/v1/auth/password-reset', { json: { email } });
    await droppedResetToken(api, email, seen);
    const jobs = await call<{ items: unknown[] }>(api, '/v1/jobs', { token });
    expect(jobs.body.items).toEqual([]);
  });
});
