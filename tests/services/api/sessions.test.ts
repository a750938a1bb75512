import { randomUUID } from 'node:crypto';
import argon2 from 'argon2';
import { UnsecuredJWT } from 'jose';
import { PLAIN_HTTP_REFRESH_COOKIE } from '../../../services/api/cookies';
import { ACCESS_TOKEN_AUDIENCE, SigningKeyStore } from '../../../services/core/auth';
import { HASH_OPTIONS } from '../../../services/core/auth/passwords';
import { SessionRepository } from '../../../services/core/db/sessions';
import { call, countRows, signUp, startApi, type ApiFixture } from './fixture';
import { login, refresh, refreshCookie, refreshCookieHeader, signedToken } from './identity-helpers';

const PASSWORD = 'correct horse battery staple';

describe('sessions: access tokens, refresh cookies, logout, keys and roles', () => {
  let api: ApiFixture;

  beforeAll(async () => {
    api = await startApi({ env: { COOKIE_SECURE: 'true' } });
  });

  afterAll(async () => {
    await api.close();
  });

  it('sets the refresh token as a __Host- cookie (Secure, Path=/, no Domain), HttpOnly and SameSite=Strict, read back under that name only, stored only hashed', async () => {
    const { email } = await signUp(api);
    const response = await call(api, '/v1/auth/login', { json: { email, password: PASSWORD } });
    const cookie = refreshCookie(response.headers);
    expect(cookie?.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // What browsers demand of a __Host- cookie, or drop it: Secure, Path=/, no Domain.
    expect(cookie?.attributes.split(/;\s*/).sort()).toEqual([expect.stringMatching(/^Expires=/), 'HttpOnly', 'Path=/', 'SameSite=Strict', 'Secure']);
    // A cookie planted under the unprefixed name (a sibling subdomain can set one for the parent domain) is not read.
    const planted = await call(api, '/v1/auth/refresh', { method: 'POST', headers: { cookie: `pk_refresh=${cookie?.value ?? ''}` } });
    expect(planted.status).toBe(401);
    expect((await refresh(api, cookie?.value ?? '')).status).toBe(200);
    const { rows } = await api.db.query<{ token_hash: Buffer }>('SELECT token_hash FROM refresh_tokens');
    expect(rows.some((row) => row.token_hash.toString('base64url') === cookie?.value)).toBe(false);
    expect(rows.every((row) => row.token_hash.length === 32)).toBe(true);
  });

  it('lives a whole session: login, calls, refresh rotating the cookie, refresh again, logout', async () => {
    const { email } = await signUp(api);
    const first = await login(api, email, PASSWORD);
    expect((await call(api, '/v1/auth/me', { token: first.accessToken })).status).toBe(200);
    const refreshed = await refresh(api, first.refresh);
    expect(refreshed.status).toBe(200);
    expect(refreshed.headers.get('cache-control')).toBe('no-store');
    const second = refreshCookie(refreshed.headers)?.value ?? '';
    expect(second).not.toBe(first.refresh);
    expect(refreshed.body.accessToken).not.toBe(first.accessToken);
    expect((await call(api, '/v1/auth/me', { token: refreshed.body.accessToken })).status).toBe(200);
    const third = await refresh(api, second);
    expect(third.status).toBe(200);
    const loggedOut = await call(api, '/v1/auth/logout', { method: 'POST', token: third.body.accessToken, headers: { cookie: refreshCookieHeader(refreshCookie(third.headers)?.value ?? '') } });
    expect(loggedOut.status).toBe(204);
    expect(refreshCookie(loggedOut.headers)?.attributes).toMatch(/Expires=Thu, 01 Jan 1970/);
  });

  it('refuses refresh and logout sent for a page of another origin, leaving the cookie and the session alone; clients without those headers pass', async () => {
    const { email } = await signUp(api);
    const session = await login(api, email, PASSWORD);
    const host = new URL(api.baseUrl).host;
    const cookie = refreshCookieHeader(session.refresh);
    const foreign: Record<string, string>[] = [
      { 'sec-fetch-site': 'same-site' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'none' },
      { origin: 'http://localhost:1' },
      { origin: 'null' },
      // Sec-Fetch-Site is the browser's word; an Origin naming this host does not overrule it.
      { 'sec-fetch-site': 'same-site', origin: `http://${host}` },
    ];
    for (const headers of foreign) {
      for (const path of ['/v1/auth/refresh', '/v1/auth/logout']) {
        const response = await call(api, path, { method: 'POST', headers: { ...headers, cookie } });
        expect({ path, headers, status: response.status, type: response.headers.get('content-type'), cleared: refreshCookie(response.headers) }).toEqual({
          path,
          headers,
          status: 403,
          type: expect.stringMatching(/problem\+json/),
          cleared: undefined,
        });
      }
    }
    const sameOrigin = await call<{ accessToken: string }>(api, '/v1/auth/refresh', { method: 'POST', headers: { 'sec-fetch-site': 'same-origin', origin: `http://${host}`, cookie } });
    expect(sameOrigin.status).toBe(200);
    const next = refreshCookie(sameOrigin.headers)?.value ?? '';
    const byOrigin = await call<{ accessToken: string }>(api, '/v1/auth/refresh', { method: 'POST', headers: { origin: `http://${host}`, cookie: refreshCookieHeader(next) } });
    expect(byOrigin.status).toBe(200);
    const plain = await refresh(api, refreshCookie(byOrigin.headers)?.value ?? '');
    expect(plain.status).toBe(200);
  });

  /** Moves the user's refresh-token exchanges back in time, past the window in which an exchanged token may be exchanged once more. */
  async function exchangedLongAgo(userId: string): Promise<void> {
    await api.db.query("UPDATE refresh_tokens SET rotated_at = rotated_at - interval '1 minute' WHERE rotated_at IS NOT NULL AND session_id IN (SELECT id FROM sessions WHERE user_id = $1)", [userId]);
  }

  it('revokes the whole family when a rotated refresh token is presented again, and logs it as a security event', async () => {
    const { email, userId } = await signUp(api);
    const first = await login(api, email, PASSWORD);
    const rotated = await refresh(api, first.refresh);
    const current = refreshCookie(rotated.headers)?.value ?? '';
    await exchangedLongAgo(userId);
    const replayed = await refresh(api, first.refresh);
    expect(replayed.status).toBe(401);
    // The thief's replay ended the session for the owner too: the current token and the access tokens die.
    expect((await refresh(api, current)).status).toBe(401);
    expect((await call(api, '/v1/auth/me', { token: rotated.body.accessToken })).status).toBe(401);
    expect((await call(api, '/v1/auth/me', { token: first.accessToken })).status).toBe(401);
    const events = api.logLines.filter((line) => line.event === 'security' && line.kind === 'refresh_token_reuse');
    expect(events).toEqual([expect.objectContaining({ userId })]);
    expect(JSON.stringify(api.logLines)).not.toContain(first.refresh);
    const metrics = await call(api, '/metrics');
    expect(metrics.text).toMatch(/platform_security_events_total\{[^}]*kind="refresh_token_reuse"[^}]*\} 1/);
  });

  it('exchanges a token once more moments after its exchange, when nobody used what that gave: a reload cut the answer short', async () => {
    const { email, userId } = await signUp(api);
    const first = await login(api, email, PASSWORD);
    const lost = refreshCookie((await refresh(api, first.refresh)).headers)?.value ?? '';

    const again = await refresh(api, first.refresh);
    expect(again.status).toBe(200);
    const current = refreshCookie(again.headers)?.value ?? '';
    expect((await call(api, '/v1/auth/me', { token: again.body.accessToken })).status).toBe(200);
    // The lost answer's token is superseded: presented after the window, it is reuse.
    await exchangedLongAgo(userId);
    expect((await refresh(api, lost)).status).toBe(401);
    expect((await refresh(api, current)).status).toBe(401);
    expect(api.logLines.filter((line) => line.event === 'security' && line.kind === 'refresh_token_reuse' && line.userId === userId)).toHaveLength(1);
  });

  it('exchanges it again as often as reloads cut the answers short within the window, and takes it as reuse once a token it gave was used', async () => {
    const { email, userId } = await signUp(api);
    const first = await login(api, email, PASSWORD);
    // Three tabs restored together: the first two refreshes are cut short by reloads, the third is answered.
    expect((await refresh(api, first.refresh)).status).toBe(200);
    expect((await refresh(api, first.refresh)).status).toBe(200);
    const kept = await refresh(api, first.refresh);
    expect(kept.status).toBe(200);
    const current = refreshCookie(kept.headers)?.value ?? '';
    const next = await refresh(api, current);
    expect(next.status).toBe(200);
    // The token the third exchange gave was used: the first token, presented once more, is reuse.
    expect((await refresh(api, first.refresh)).status).toBe(401);
    expect((await refresh(api, refreshCookie(next.headers)?.value ?? '')).status).toBe(401);
    expect(api.logLines.filter((line) => line.event === 'security' && line.kind === 'refresh_token_reuse' && line.userId === userId)).toHaveLength(1);
  });

  it('takes a token presented again after its successor was used as reuse, however soon', async () => {
    const { email, userId } = await signUp(api);
    const first = await login(api, email, PASSWORD);
    const second = refreshCookie((await refresh(api, first.refresh)).headers)?.value ?? '';
    const third = await refresh(api, second);
    expect(third.status).toBe(200);

    expect((await refresh(api, first.refresh)).status).toBe(401);
    expect((await refresh(api, refreshCookie(third.headers)?.value ?? '')).status).toBe(401);
    expect((await call(api, '/v1/auth/me', { token: third.body.accessToken })).status).toBe(401);
    expect(api.logLines.filter((line) => line.event === 'security' && line.kind === 'refresh_token_reuse' && line.userId === userId)).toHaveLength(1);
  });

  it('logout denies the access token and the refresh token at once; other sessions of the user live on', async () => {
    const { email } = await signUp(api);
    const one = await login(api, email, PASSWORD);
    const other = await login(api, email, PASSWORD);
    const loggedOut = await call(api, '/v1/auth/logout', { method: 'POST', token: one.accessToken, headers: { cookie: refreshCookieHeader(one.refresh) } });
    expect(loggedOut.status).toBe(204);
    expect((await call(api, '/v1/auth/me', { token: one.accessToken })).status).toBe(401);
    expect((await refresh(api, one.refresh)).status).toBe(401);
    expect((await call(api, '/v1/auth/me', { token: other.accessToken })).status).toBe(200);
    expect((await call(api, '/v1/auth/logout', { method: 'POST', token: one.accessToken })).status).toBe(204);
  });

  it('denies a logged-out token in another API process too, through the Redis denylist', async () => {
    const second = await startApi({ servers: { databaseUrl: api.env.DATABASE_URL, redisUrl: api.env.REDIS_URL, redisPrefix: api.env.QUEUE_PREFIX }, env: { KEY_ENCRYPTION_SECRET: api.env.KEY_ENCRYPTION_SECRET } });
    try {
      const { email } = await signUp(api);
      const session = await login(api, email, PASSWORD);
      expect((await call(second, '/v1/auth/me', { token: session.accessToken })).status).toBe(200);
      await call(api, '/v1/auth/logout', { method: 'POST', token: session.accessToken });
      let status = 200;
      for (let attempt = 0; attempt < 100 && status === 200; attempt += 1) {
        status = (await call(second, '/v1/auth/me', { token: session.accessToken })).status;
        if (status === 200) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(status).toBe(401);
    } finally {
      await second.close();
    }
  });

  it('refuses expired, tampered, unknown-kid, alg none, wrong-audience and wrong-issuer tokens', async () => {
    const { userId } = await signUp(api);
    const now = Math.floor(Date.now() / 1000);
    const good = await signedToken(api, { userId });
    expect((await call(api, '/v1/auth/me', { token: good })).status).toBe(200);
    const refused = {
      expired: await signedToken(api, { userId, expiresAt: now - 60 }),
      tampered: (() => {
        const [header, payload, signature] = good.split('.') as [string, string, string];
        const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
        return `${header}.${Buffer.from(JSON.stringify({ ...claims, role: 'admin' })).toString('base64url')}.${signature}`;
      })(),
      unknownKid: await signedToken(api, { userId, kid: randomUUID() }),
      algNone: new UnsecuredJWT({ role: 'admin', sid: randomUUID() }).setSubject(userId).setIssuer(api.env.JWT_ISSUER).setAudience(ACCESS_TOKEN_AUDIENCE).setIssuedAt().setExpirationTime('5m').setJti(randomUUID()).encode(),
      wrongAudience: await signedToken(api, { userId, audience: 'another-api' }),
      wrongIssuer: await signedToken(api, { userId, issuer: 'another-stack' }),
    };
    for (const [name, token] of Object.entries(refused)) {
      const response = await call(api, '/v1/auth/me', { token });
      expect({ name, status: response.status }).toEqual({ name, status: 401 });
      expect(response.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    }
  });

  it('keeps sessions valid across a key rotation and accepts tokens of the new key without a restart', async () => {
    const { email, userId } = await signUp(api);
    const before = await login(api, email, PASSWORD);
    const kidBefore = (await api.db.query<{ kid: string }>('SELECT kid FROM signing_keys ORDER BY created_at DESC LIMIT 1')).rows[0]?.kid;
    const { kid: newKid } = await new SigningKeyStore(api.db).rotate(api.env.KEY_ENCRYPTION_SECRET);
    expect(newKid).not.toBe(kidBefore);
    expect((await call(api, '/v1/auth/me', { token: before.accessToken })).status).toBe(200);
    const withNewKey = await signedToken(api, { userId });
    expect((await call(api, '/v1/auth/me', { token: withNewKey })).status).toBe(200);
    expect((await refresh(api, before.refresh)).status).toBe(200);
    expect(await countRows(api, 'signing_keys')).toBe(2);
  });

  it('demotes an admin at once: the admin token stops working at the next request, and admin routes refuse users with 403', async () => {
    const { email, userId } = await signUp(api);
    // Another admin stays: the last enabled admin is not demoted.
    await api.deps.auth.setRole((await signUp(api)).email, 'admin', { actor: 'test' });
    await api.deps.auth.setRole(email, 'admin', { actor: 'test' });
    const admin = await login(api, email, PASSWORD);
    expect((await call(api, '/v1/admin/queues', { token: admin.accessToken })).status).toBe(200);
    await api.deps.auth.setRole(email, 'user', { actor: 'test' });
    expect((await call(api, '/v1/admin/queues', { token: admin.accessToken })).status).toBe(401);
    expect((await refresh(api, admin.refresh)).status).toBe(401);
    const user = await login(api, email, PASSWORD);
    const me = await call(api, '/v1/auth/me', { token: user.accessToken });
    expect(me.body).toMatchObject({ id: userId, role: 'user' });
    for (const [method, path] of [['GET', '/v1/admin/queues'], ['GET', '/v1/admin/dlq'], ['POST', '/v1/admin/queues/pause'], ['POST', '/v1/admin/queues/resume'], ['POST', `/v1/admin/dlq/${randomUUID()}/replay`]] as const) {
      const response = await call(api, path, { method, token: user.accessToken });
      expect({ path, status: response.status }).toEqual({ path, status: 403 });
    }
    expect(api.logLines.filter((line) => line.kind === 'role_change' && line.userId === userId)).toHaveLength(2);
  });

  it('gives no admin token to a sign-in that was still checking the password when the admin was demoted', async () => {
    const { email, userId } = await signUp(api);
    await api.deps.auth.setRole((await signUp(api)).email, 'admin', { actor: 'test' });
    await api.deps.auth.setRole(email, 'admin', { actor: 'test' });
    // A hash that takes a second or more to check: the sign-in reads the account (role admin), and the demotion commits while it is checked.
    const slowHash = await argon2.hash(PASSWORD, { type: argon2.argon2id, memoryCost: HASH_OPTIONS.memoryCost, timeCost: 60, parallelism: 1 });
    await api.db.query('UPDATE users SET password_hash = $2 WHERE id = $1', [userId, slowHash]);
    let answered = false;
    const signIn = call<{ accessToken?: string }>(api, '/v1/auth/login', { json: { email, password: PASSWORD } }).finally(() => (answered = true));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await api.deps.auth.setRole(email, 'user', { actor: 'test' });
    // Otherwise the sign-in ran wholly before the demotion, and this test proved nothing.
    expect(answered).toBe(false);
    const raced = await signIn;
    expect(raced.status).toBe(401);
    expect(raced.body.accessToken).toBeUndefined();
    // Signing in again gives a user's token.
    const user = await login(api, email, PASSWORD);
    expect((await call(api, '/v1/admin/queues', { token: user.accessToken })).status).toBe(403);
  });

  it('keeps refusing a logged-out access token through the seconds of clock skew its expiry is granted', async () => {
    const { userId } = await signUp(api);
    const expiresAt = Math.floor(Date.now() / 1000) + 2;
    const token = await signedToken(api, { userId, expiresAt });
    expect((await call(api, '/v1/auth/me', { token })).status).toBe(200);
    expect((await call(api, '/v1/auth/logout', { method: 'POST', token })).status).toBe(204);
    expect((await call(api, '/v1/auth/me', { token })).status).toBe(401);
    // Past its expiry, but within the skew a verifier tolerates: the denylist must still hold it.
    await new Promise((resolve) => setTimeout(resolve, expiresAt * 1000 + 1_000 - Date.now()));
    expect((await call(api, '/v1/auth/me', { token })).status).toBe(401);
  });

  it('keeps a revoked session in the durable denylist (what a Redis restarted empty reloads) through the same seconds of skew', async () => {
    const { token, userId } = await signUp(api);
    expect((await call(api, '/v1/auth/logout', { method: 'POST', token })).status).toBe(204);
    // Its access tokens expired two seconds ago: a verifier still accepts them for three more.
    const { rows } = await api.db.query<{ id: string }>("UPDATE sessions SET access_expires_at = now() - interval '2 seconds' WHERE user_id = $1 RETURNING id", [userId]);
    const durable = await new SessionRepository(api.db).revokedStillRelevant();
    expect(durable.map((revocation) => revocation.id)).toEqual(expect.arrayContaining(rows.map((row) => row.id)));
    expect(rows).toHaveLength(1);
  });

  it('rehashes a password at login when its hash was made with weaker argon2 parameters than today\'s', async () => {
    const { email, userId } = await signUp(api);
    const weaker = await argon2.hash(PASSWORD, { type: argon2.argon2id, memoryCost: HASH_OPTIONS.memoryCost / 2, timeCost: 1, parallelism: 1 });
    await api.db.query('UPDATE users SET password_hash = $2 WHERE id = $1', [userId, weaker]);
    expect((await call(api, '/v1/auth/login', { json: { email, password: PASSWORD } })).status).toBe(200);
    const { rows } = await api.db.query<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = $1', [userId]);
    const stored = rows[0]?.password_hash ?? '';
    expect(stored).not.toBe(weaker);
    expect(argon2.needsRehash(stored, HASH_OPTIONS)).toBe(false);
    expect(stored).toContain(`m=${HASH_OPTIONS.memoryCost},`);
    expect(await argon2.verify(stored, PASSWORD)).toBe(true);
    expect((await call(api, '/v1/auth/login', { json: { email, password: PASSWORD } })).status).toBe(200);
  });

  it('signs in every one of several sign-ins at once that each find the hash to rehash, whichever rehash is kept', async () => {
    const { email, userId } = await signUp(api);
    const weaker = await argon2.hash(PASSWORD, { type: argon2.argon2id, memoryCost: HASH_OPTIONS.memoryCost / 2, timeCost: 1, parallelism: 1 });
    await api.db.query('UPDATE users SET password_hash = $2 WHERE id = $1', [userId, weaker]);
    const signIns = await Promise.all(Array.from({ length: 4 }, () => call(api, '/v1/auth/login', { json: { email, password: PASSWORD } })));
    expect(signIns.map((response) => response.status)).toEqual([200, 200, 200, 200]);
  });
});

describe('the refresh cookie of a plain-HTTP local run (COOKIE_SECURE=false)', () => {
  let api: ApiFixture;

  beforeAll(async () => {
    api = await startApi({ env: { COOKIE_SECURE: 'false' } });
  });

  afterAll(async () => {
    await api.close();
  });

  it('is pk_refresh, HttpOnly and SameSite=Strict, not Secure (a browser would not send it over http://), limited to /v1/auth, and refreshes', async () => {
    const { email } = await signUp(api);
    const response = await call(api, '/v1/auth/login', { json: { email, password: PASSWORD } });
    const cookie = refreshCookie(response.headers, PLAIN_HTTP_REFRESH_COOKIE);
    expect(cookie?.attributes.split(/;\s*/).sort()).toEqual([expect.stringMatching(/^Expires=/), 'HttpOnly', 'Path=/v1/auth', 'SameSite=Strict']);
    const refreshed = await call(api, '/v1/auth/refresh', { method: 'POST', headers: { cookie: refreshCookieHeader(cookie?.value ?? '', PLAIN_HTTP_REFRESH_COOKIE) } });
    expect(refreshed.status).toBe(200);
    expect(refreshCookie(refreshed.headers, PLAIN_HTTP_REFRESH_COOKIE)?.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});
