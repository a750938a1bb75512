import { createSecretKey } from 'node:crypto';
import { SignJWT } from 'jose';
import { ACCESS_TOKEN_AUDIENCE } from '../../../services/core/auth';
import { call, countRows, signUp, startApi, type ApiFixture } from './fixture';
import { login, refresh, refreshCookie, signedToken } from './identity-helpers';

describe('auth routes', () => {
  let api: ApiFixture;

  beforeAll(async () => {
    api = await startApi();
  });

  afterAll(async () => {
    await api.close();
  });

  it('registers, logs in and tells the caller who they are', async () => {
    const registered = await call(api, '/v1/auth/register', { json: { email: '  Ada.Lovelace@Example.COM ', password: 'analytical engine 1843' } });
    expect(registered.status).toBe(202);
    expect(registered.body).toEqual({ email: 'ada.lovelace@example.com', detail: expect.any(String) });

    const login = await call(api, '/v1/auth/login', { json: { email: 'ADA.lovelace@example.com', password: 'analytical engine 1843' } });
    expect(login.status).toBe(200);
    expect(login.headers.get('cache-control')).toBe('no-store');
    expect(login.body).toEqual({ accessToken: expect.any(String), tokenType: 'Bearer', expiresIn: api.env.ACCESS_TOKEN_TTL_SECONDS });

    const me = await call(api, '/v1/auth/me', { token: String(login.body.accessToken) });
    expect(me.status).toBe(200);
    expect(me.body).toEqual({ id: expect.any(String), email: 'ada.lovelace@example.com', role: 'user' });
  });

  it('stores argon2id hashes, never the password', async () => {
    const { userId } = await signUp(api, 'a password nobody guesses');
    const { rows } = await api.db.query<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = $1', [userId]);
    expect(rows[0]?.password_hash).toMatch(/^\$argon2id\$/);
    expect(rows[0]?.password_hash).not.toContain('nobody guesses');
  });

  it('answers a taken email exactly as a free one, mails its owner instead, and keeps the old password', async () => {
    const { email } = await signUp(api);
    const fresh = await call(api, '/v1/auth/register', { json: { email: `fresh-${email}`, password: 'another long password' } });
    const again = await call(api, '/v1/auth/register', { json: { email: email.toUpperCase(), password: 'another long password' } });
    expect(again.status).toBe(fresh.status);
    expect(again.body).toEqual({ ...fresh.body, email });
    expect((await call(api, '/v1/auth/login', { json: { email, password: 'another long password' } })).status).toBe(401);
    let mails = 0;
    for (let attempt = 0; attempt < 50 && mails === 0; attempt += 1) {
      const { rows } = await api.db.query<{ count: number }>("SELECT count(*)::int AS count FROM jobs WHERE type = 'email.send' AND input->>'to' = $1", [email]);
      mails = rows[0]?.count ?? 0;
      if (mails === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(mails).toBe(1);
  });

  it('refuses a common password, whatever its case', async () => {
    const refused = await call(api, '/v1/auth/register', { json: { email: 'common@example.com', password: 'QWERTYUIOP123' } });
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toEqual([{ field: 'body.password', message: expect.stringContaining('common') }]);
  });

  it('rejects a bad email and a password outside 12-256 characters with field errors, storing nothing', async () => {
    const before = await countRows(api, 'users');
    const bad = await call(api, '/v1/auth/register', { json: { email: 'not-an-email', password: 'short' } });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(bad.body.errors).toEqual(
      expect.arrayContaining([
        { field: 'body.email', message: expect.any(String) },
        { field: 'body.password', message: 'must be at least 12 characters' },
      ]),
    );
    const tooLong = await call(api, '/v1/auth/register', { json: { email: 'long@example.com', password: 'x'.repeat(257) } });
    expect(tooLong.status).toBe(400);
    expect(await countRows(api, 'users')).toBe(before);
  });

  it('gives one answer for an unknown email and a wrong password', async () => {
    const { email } = await signUp(api);
    const wrongPassword = await call(api, '/v1/auth/login', { json: { email, password: 'not the password at all' } });
    const unknownEmail = await call(api, '/v1/auth/login', { json: { email: 'nobody@example.com', password: 'not the password at all' } });
    expect(wrongPassword.status).toBe(401);
    expect(unknownEmail.status).toBe(401);
    expect(wrongPassword.body.detail).toBe(unknownEmail.body.detail);
  });

  it('answers 401 without a token, with a malformed one, a forged one and an expired one', async () => {
    const { userId } = await signUp(api);
    const missing = await call(api, '/v1/auth/me');
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    expect((await call(api, '/v1/auth/me', { token: 'not.a.jwt' })).status).toBe(401);

    const sign = (secret: string, expiresAt: number) =>
      new SignJWT({ role: 'admin', sid: userId })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(userId)
        .setIssuer(api.env.JWT_ISSUER)
        .setAudience(ACCESS_TOKEN_AUDIENCE)
        .setIssuedAt(expiresAt - 60)
        .setExpirationTime(expiresAt)
        .setJti('test')
        .sign(createSecretKey(Buffer.from(secret)));
    const now = Math.floor(Date.now() / 1000);
    const forged = await call(api, '/v1/auth/me', { token: await sign('a different secret of at least 32 chars', now + 600) });
    expect(forged.status).toBe(401);
    const expired = await call(api, '/v1/auth/me', { token: await signedToken(api, { userId, expiresAt: now - 3_600 }) });
    expect(expired.status).toBe(401);
    expect(expired.body.detail).toBe('the access token has expired');
  });
});

describe('auth rate limit', () => {
  let api: ApiFixture;

  beforeAll(async () => {
    api = await startApi({ env: { AUTH_RATE_LIMIT_PER_MINUTE: '3' } });
  });

  afterAll(async () => {
    await api.close();
  });

  it('answers 429 with Retry-After once an address exceeds the per-minute limit', async () => {
    const attempt = () => call(api, '/v1/auth/login', { json: { email: 'someone@example.com', password: 'whatever password' } });
    for (let i = 0; i < 3; i += 1) expect((await attempt()).status).toBe(401);
    const limited = await attempt();
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
  });
});

describe('refresh rate limit', () => {
  let api: ApiFixture;

  beforeAll(async () => {
    api = await startApi({ env: { AUTH_RATE_LIMIT_PER_MINUTE: '2', REFRESH_RATE_LIMIT_PER_MINUTE: '3' } });
  });

  afterAll(async () => {
    await api.close();
  });

  it('is apart from the credential limit: logins used up leave refreshes working, which have a limit of their own', async () => {
    const email = 'refresher@example.com';
    const password = 'correct horse battery staple';
    expect((await call(api, '/v1/auth/register', { json: { email, password } })).status).toBe(202);
    let cookie = (await login(api, email, password)).refresh;
    expect((await call(api, '/v1/auth/login', { json: { email, password } })).status).toBe(429);
    for (let i = 0; i < 3; i += 1) {
      const refreshed = await refresh(api, cookie);
      expect(refreshed.status).toBe(200);
      cookie = refreshCookie(refreshed.headers)?.value ?? '';
    }
    const limited = await refresh(api, cookie);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });
});
