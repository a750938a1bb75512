import { createHash } from 'node:crypto';
import { waitFor } from '../engine/fixture';
import { platform } from '../cli/platform-cli';
import { call, signUp, startApi, type ApiFixture } from './fixture';
import { login, refresh, refreshCookie, refreshCookieHeader } from './identity-helpers';
import { startWorkerFor } from './worker-process';

const PASSWORD = 'correct horse battery staple';
const hashOf = (token: string) => createHash('sha256').update(token).digest();

async function sessionOf(api: ApiFixture, refreshToken: string): Promise<string> {
  const { rows } = await api.db.query<{ session_id: string }>('SELECT session_id FROM refresh_tokens WHERE token_hash = $1', [hashOf(refreshToken)]);
  const sessionId = rows[0]?.session_id;
  if (!sessionId) throw new Error('no session for that refresh token');
  return sessionId;
}

/** Refreshes `times` times in a row; returns the last refresh token, each earlier one rotated. */
async function refreshed(api: ApiFixture, refreshToken: string, times: number): Promise<string> {
  let current = refreshToken;
  for (let i = 0; i < times; i += 1) {
    const response = await refresh(api, current);
    if (response.status !== 200) throw new Error(`refresh failed: ${response.status}`);
    current = refreshCookie(response.headers)?.value ?? '';
  }
  return current;
}

async function rows(api: ApiFixture): Promise<{ sessions: string[]; refreshTokens: number; resetTokens: number }> {
  const sessions = await api.db.query<{ id: string }>('SELECT id FROM sessions ORDER BY id');
  const counts = await api.db.query<{ refresh: number; reset: number }>(
    'SELECT (SELECT count(*)::int FROM refresh_tokens) AS refresh, (SELECT count(*)::int FROM password_reset_tokens) AS reset',
  );
  return { sessions: sessions.rows.map((row) => row.id), refreshTokens: counts.rows[0]?.refresh ?? -1, resetTokens: counts.rows[0]?.reset ?? -1 };
}

describe('retention of sessions, refresh tokens and reset tokens', () => {
  let api: ApiFixture;

  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(() => api?.close());

  it('deletes what expired (the worker every PURGE_INTERVAL_SECONDS, and `platform purge`), keeping every session that can still be renewed or denied', async () => {
    const { email } = await signUp(api);
    // Live: refreshed for a month, its exchanged tokens expired one by one; its last one renews it.
    const live = await login(api, email, PASSWORD);
    const liveToken = await refreshed(api, live.refresh, 3);
    const liveSession = await sessionOf(api, liveToken);
    await api.db.query("UPDATE refresh_tokens SET expires_at = now() - interval '1 minute' WHERE session_id = $1 AND token_hash <> $2", [liveSession, hashOf(liveToken)]);
    // Abandoned: nobody refreshed it before its tokens expired.
    const abandonedToken = await refreshed(api, (await login(api, email, PASSWORD)).refresh, 2);
    const abandoned = await sessionOf(api, abandonedToken);
    await api.db.query("UPDATE refresh_tokens SET expires_at = now() - interval '1 minute' WHERE session_id = $1", [abandoned]);
    await api.db.query("UPDATE sessions SET access_expires_at = now() - interval '1 hour' WHERE id = $1", [abandoned]);
    // Signed out, its last access token expired: no longer on the denylist, and its refresh token refused.
    const signedOut = await login(api, email, PASSWORD);
    const signedOutSession = await sessionOf(api, signedOut.refresh);
    expect((await call(api, '/v1/auth/logout', { method: 'POST', token: signedOut.accessToken, headers: { cookie: refreshCookieHeader(signedOut.refresh) } })).status).toBe(204);
    await api.db.query("UPDATE sessions SET access_expires_at = now() - interval '1 hour' WHERE id = $1", [signedOutSession]);
    // Signed out just now: its access token is still denied, so the session stays.
    const justSignedOut = await login(api, email, PASSWORD);
    const justSignedOutSession = await sessionOf(api, justSignedOut.refresh);
    expect((await call(api, '/v1/auth/logout', { method: 'POST', token: justSignedOut.accessToken, headers: { cookie: refreshCookieHeader(justSignedOut.refresh) } })).status).toBe(204);
    // Two reset requests: the first, voided by the second, has expired since.
    for (let i = 1; i <= 2; i += 1) {
      expect((await call(api, '/v1/auth/password-reset', { json: { email } })).status).toBe(202);
      await waitFor(`reset token ${i} to be stored`, async () => (await rows(api)).resetTokens === i, 10_000);
    }
    await api.db.query("UPDATE password_reset_tokens SET expires_at = now() - interval '1 minute' WHERE used_at IS NOT NULL");

    const before = await rows(api);
    expect(before.sessions).toHaveLength(5);
    expect(before.resetTokens).toBe(2);

    const worker = await startWorkerFor(api, { PURGE_INTERVAL_SECONDS: '1' });
    try {
      await waitFor('the worker\'s periodic purge to delete the expired sessions and tokens', async () => (await rows(api)).sessions.length === 3, 30_000);
    } finally {
      await worker.stop();
    }
    const after = await rows(api);
    // signUp's session (one token), the live one (its last token), the one signed out just now (its token).
    const signUpSession = before.sessions.find((id) => ![liveSession, abandoned, signedOutSession, justSignedOutSession].includes(id));
    expect(after).toEqual({ sessions: [signUpSession, liveSession, justSignedOutSession].sort(), refreshTokens: 3, resetTokens: 1 });
    // The live session renews as before; what was deleted had stopped working already.
    expect((await refresh(api, liveToken)).status).toBe(200);
    expect((await refresh(api, abandonedToken)).status).toBe(401);

    // The CLI purges the same: the live session's exchanged token, expired.
    await api.db.query("UPDATE refresh_tokens SET expires_at = now() - interval '1 minute' WHERE token_hash = $1", [hashOf(liveToken)]);
    const cliEnv = { DATABASE_URL: api.env.DATABASE_URL, REDIS_URL: api.env.REDIS_URL, QUEUE_PREFIX: api.env.QUEUE_PREFIX, OBJECT_STORE_DIR: api.env.OBJECT_STORE_DIR, LOG_LEVEL: 'error' };
    const purged = await platform(['purge', '--json'], cliEnv);
    expect(purged.stderr).toBe('');
    expect(JSON.parse(purged.stdout)).toEqual({ purged: 0, retentionDays: 30, expired: { refreshTokens: 1, sessions: 0, resetTokens: 0 } });
    expect((await rows(api)).refreshTokens).toBe(3);
  });
});
