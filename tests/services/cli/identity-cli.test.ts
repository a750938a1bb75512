import { call, signUp, startApi, type ApiFixture } from '../api/fixture';
import { currentSigningKey, login, refresh, refreshCookie } from '../api/identity-helpers';
import { SignJWT } from 'jose';
import { randomUUID } from 'node:crypto';
import { ACCESS_TOKEN_AUDIENCE } from '../../../services/core/auth';
import { cliEnvFor, platform } from './platform-cli';

const PASSWORD = 'correct horse battery staple';

function refreshCookieValue(headers: Headers): string {
  const value = refreshCookie(headers)?.value;
  if (!value) throw new Error('the refresh set no cookie');
  return value;
}

/** The `platform users` and `platform keys` commands, run as processes against the API's servers, their effect seen over HTTP. */
describe('platform users and keys', () => {
  let api: ApiFixture;
  let cliEnv: Record<string, string>;

  beforeAll(async () => {
    api = await startApi();
    cliEnv = { ...cliEnvFor(api.env), KEY_ENCRYPTION_SECRET: api.env.KEY_ENCRYPTION_SECRET, JWT_ISSUER: api.env.JWT_ISSUER };
  });
  afterAll(() => api?.close());

  it('users create-admin reads the password from standard input; the account signs in as admin', async () => {
    const email = `first-admin-${randomUUID()}@example.com`;
    const created = await platform(['users', 'create-admin', email, '--json'], cliEnv, `${PASSWORD}\n`);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ created: true, user: { email, role: 'admin' } });
    const session = await login(api, email, PASSWORD);
    expect((await call(api, '/v1/auth/me', { token: session.accessToken })).body).toMatchObject({ email, role: 'admin' });
    expect((await call(api, '/v1/admin/queues', { token: session.accessToken })).status).toBe(200);
    // The newline that ends a piped password is not part of it.
    expect((await call(api, '/v1/auth/login', { json: { email, password: `${PASSWORD}\n` } })).status).toBe(401);
  });

  it('users create-admin refuses a password the policy refuses as bad usage (exit 2), and creates nothing', async () => {
    const email = `weak-admin-${randomUUID()}@example.com`;
    const refused = await platform(['users', 'create-admin', email, '--json'], cliEnv, 'password\n');
    expect({ code: refused.code, stderr: JSON.parse(refused.stderr) }).toEqual({
      code: 2,
      stderr: { error: { kind: 'usage', message: 'the password must be at least 12 characters', exitCode: 2 } },
    });
    expect((await api.db.query('SELECT 1 FROM users WHERE email = $1', [email])).rowCount).toBe(0);
  });

  it('users create-admin refuses a password sign-in could never take (a NUL, bytes that are not UTF-8), exit 2, and creates nothing', async () => {
    for (const [stdin, message] of [
      [Buffer.from('correct horse\0battery staple\n'), 'the password contains a NUL character, which sign-in refuses'],
      [Buffer.concat([Buffer.from('correct horse battery caf'), Buffer.from([0xe9]), Buffer.from('\n')]), 'the password is not UTF-8 text'],
    ] as const) {
      const email = `unusable-admin-${randomUUID()}@example.com`;
      const refused = await platform(['users', 'create-admin', email, '--json'], cliEnv, stdin);
      expect({ code: refused.code, stdout: refused.stdout, stderr: JSON.parse(refused.stderr) }).toEqual({ code: 2, stdout: '', stderr: { error: { kind: 'usage', message, exitCode: 2 } } });
      expect((await api.db.query('SELECT 1 FROM users WHERE email = $1', [email])).rowCount).toBe(0);
    }
    // The same password without the NUL signs in: the API refuses a NUL in any JSON body.
    expect((await call(api, '/v1/auth/login', { json: { email: 'nobody@example.com', password: 'correct horse\0battery staple' } })).status).toBe(400);
  });

  it('users set-role demotes an admin: the admin\'s token is refused at its next request, and a new login is a user', async () => {
    const { email } = await signUp(api);
    // Another admin stays: the last enabled admin is not demoted.
    expect((await platform(['users', 'set-role', (await signUp(api)).email, 'admin'], cliEnv)).code).toBe(0);
    expect((await platform(['users', 'set-role', email, 'admin'], cliEnv)).code).toBe(0);
    const admin = await login(api, email, PASSWORD);
    expect((await call(api, '/v1/admin/queues', { token: admin.accessToken })).status).toBe(200);

    const demoted = await platform(['users', 'set-role', email, 'user'], cliEnv);
    expect(demoted.code).toBe(0);
    expect(demoted.stdout).toContain('is now user');
    expect((await call(api, '/v1/admin/queues', { token: admin.accessToken })).status).toBe(401);
    expect((await refresh(api, admin.refresh)).status).toBe(401);
    const user = await login(api, email, PASSWORD);
    expect((await call(api, '/v1/admin/queues', { token: user.accessToken })).status).toBe(403);

    const badRole = await platform(['users', 'set-role', email, 'root'], cliEnv);
    expect(badRole.code).toBe(2);
    expect(badRole.stderr).toContain('role must be user or admin');
  });

  it('keys rotate keeps sessions valid; once a key is rotated out, a token it signed is refused', async () => {
    const { email, userId } = await signUp(api);
    const session = await login(api, email, PASSWORD);
    const original = await currentSigningKey(api);
    const now = Math.floor(Date.now() / 1000);
    const signedWithOriginal = await new SignJWT({ role: 'user', sid: randomUUID() })
      .setProtectedHeader({ alg: 'EdDSA', kid: original.kid, typ: 'JWT' })
      .setSubject(userId)
      .setIssuer(api.env.JWT_ISSUER)
      .setAudience(ACCESS_TOKEN_AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .setJti(randomUUID())
      .sign(original.key);

    const first = await platform(['keys', 'rotate', '--json'], cliEnv);
    expect(first.code).toBe(0);
    expect((await call(api, '/v1/auth/me', { token: session.accessToken })).status).toBe(200);
    // The running API accepts the original key's token until the rotation that retires the key.
    expect((await call(api, '/v1/auth/me', { token: signedWithOriginal })).status).toBe(200);
    const retired = new Promise<void>((resolve) => {
      void api.deps.auth.verifyAccessToken(signedWithOriginal).then((claims) => api.deps.auth.watchRevocation(claims, resolve));
    });
    const second = await platform(['keys', 'rotate', '--json'], cliEnv);
    expect(second.code).toBe(0);
    const kids = (await api.db.query<{ kid: string }>('SELECT kid FROM signing_keys')).rows.map((row) => row.kid).sort();
    expect(kids).toEqual([(JSON.parse(first.stdout) as { kid: string }).kid, (JSON.parse(second.stdout) as { kid: string }).kid].sort());
    expect(JSON.parse(second.stdout)).toMatchObject({ revoked: [original.kid] });
    // Announced: the process that held the retired key refuses its tokens at once, not at its next key refresh a minute later.
    await retired;
    expect((await call(api, '/v1/auth/me', { token: signedWithOriginal })).status).toBe(401);
    // So is the session's access token, signed with the same key; its refresh cookie is not, and gets one of the current key.
    expect((await call(api, '/v1/auth/me', { token: session.accessToken })).status).toBe(401);
    const current = await refresh(api, session.refresh);
    expect(current.status).toBe(200);
    expect((await call(api, '/v1/auth/me', { token: current.body.accessToken })).status).toBe(200);
    session.refresh = refreshCookieValue(current.headers);

    // A process started now holds only the two newest keys, as every API process does after its next key refresh.
    const restarted = await startApi({
      servers: { databaseUrl: api.env.DATABASE_URL, redisUrl: api.env.REDIS_URL, redisPrefix: api.env.QUEUE_PREFIX },
      env: { KEY_ENCRYPTION_SECRET: api.env.KEY_ENCRYPTION_SECRET, JWT_ISSUER: api.env.JWT_ISSUER },
    });
    try {
      const refused = await call(restarted, '/v1/auth/me', { token: signedWithOriginal });
      expect(refused.status).toBe(401);
      const renewed = await refresh(restarted, session.refresh);
      expect(renewed.status).toBe(200);
      expect((await call(restarted, '/v1/auth/me', { token: renewed.body.accessToken })).body).toMatchObject({ id: userId });
    } finally {
      await restarted.close();
    }

    const missingSecret = await platform(['keys', 'rotate'], { ...cliEnv, KEY_ENCRYPTION_SECRET: undefined });
    expect(missingSecret.code).toBe(2);
    expect(missingSecret.stderr).toContain('KEY_ENCRYPTION_SECRET');
  });
});
