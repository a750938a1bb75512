import { randomUUID } from 'node:crypto';
import { call, signUp, startApi, type ApiFixture } from '../api/fixture';
import { login, refresh } from '../api/identity-helpers';
import { SseClient } from '../api/sse-client';
import { startWorkerFor } from '../api/worker-process';
import { platform } from './platform-cli';

const PASSWORD = 'correct horse battery staple';

/** The settings a `platform` run needs to reach the fixture's servers. */
function cliEnvOf(api: ApiFixture, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: api.env.DATABASE_URL,
    REDIS_URL: api.env.REDIS_URL,
    QUEUE_PREFIX: api.env.QUEUE_PREFIX,
    OBJECT_STORE_DIR: api.env.OBJECT_STORE_DIR,
    KEY_ENCRYPTION_SECRET: api.env.KEY_ENCRYPTION_SECRET,
    JWT_ISSUER: api.env.JWT_ISSUER,
    LOG_LEVEL: 'error',
    ...overrides,
  };
}

/** A second API process on the same servers: what another replica sees. */
function secondProcess(api: ApiFixture): Promise<ApiFixture> {
  return startApi({
    servers: { databaseUrl: api.env.DATABASE_URL, redisUrl: api.env.REDIS_URL, redisPrefix: api.env.QUEUE_PREFIX },
    env: { KEY_ENCRYPTION_SECRET: api.env.KEY_ENCRYPTION_SECRET, STREAM_RATE_LIMIT_PER_MINUTE: '100000' },
  });
}

/** The login answer without what differs between any two requests. */
async function loginAnswer(api: ApiFixture, email: string, password: string) {
  const response = await call(api, '/v1/auth/login', { json: { email, password } });
  const { requestId: _requestId, instance: _instance, ...body } = response.body;
  return { status: response.status, type: response.headers.get('content-type'), body, cookie: response.headers.getSetCookie() };
}

/** The reset mails queued for `email` (email.send jobs of the platform's account), their tokens in queueing order. */
async function queuedResetTokens(api: ApiFixture, email: string): Promise<string[]> {
  const { rows } = await api.db.query<{ text: string }>("SELECT input->>'text' AS text FROM jobs WHERE type = 'email.send' AND input->>'to' = $1 ORDER BY created_at", [email]);
  return rows.flatMap((row) => /Reset token[^:]*: ([A-Za-z0-9_-]{43})/.exec(row.text)?.[1] ?? []);
}

async function resetTokenFor(api: ApiFixture, email: string): Promise<string> {
  const before = (await queuedResetTokens(api, email)).length;
  expect((await call(api, '/v1/auth/password-reset', { json: { email } })).status).toBe(202);
  // The reset is queued after the answer.
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const tokens = await queuedResetTokens(api, email);
    if (tokens.length > before) return tokens[tokens.length - 1] as string;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no reset mail queued for ${email}`);
}

/** The JSON log lines a CLI run wrote on standard error. */
function logLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('platform users disable and enable', () => {
  let api: ApiFixture;
  let cliEnv: Record<string, string>;

  beforeAll(async () => {
    api = await startApi({ env: { STREAM_RATE_LIMIT_PER_MINUTE: '100000' } });
    cliEnv = cliEnvOf(api);
  });
  afterAll(() => api?.close());

  it('locks an account out at once: sign-in answered as a wrong password, refresh and access tokens refused, event streams ended in every API process, no way back through a reset; enable lets it sign in again', async () => {
    const second = await secondProcess(api);
    try {
      const { email, userId, token } = await signUp(api);
      const other = await login(api, email, PASSWORD);
      const resetToken = await resetTokenFor(api, email);
      const here = await SseClient.open(api, '/v1/jobs/events', token);
      const there = await SseClient.open(second, '/v1/jobs/events', other.accessToken);
      expect([here.status, there.status]).toEqual([200, 200]);
      expect((await call(second, '/v1/auth/me', { token })).status).toBe(200);
      const wrongPassword = await loginAnswer(api, email, 'not the password at all');

      const disabled = await platform(['users', 'disable', email, '--reason', 'left the company (HR-1234)', '--json'], { ...cliEnv, LOG_LEVEL: 'warn' });
      expect(disabled.code).toBe(0);
      expect(JSON.parse(disabled.stdout)).toEqual({ user: { id: userId, email, role: 'user', disabled: true, disabledAt: expect.any(String) }, changed: true, sessionsEnded: 2 });

      // Refused at the next request, in this process and in the other one.
      for (const replica of [api, second]) {
        expect((await call(replica, '/v1/auth/me', { token })).status).toBe(401);
        expect((await call(replica, '/v1/jobs', { token: other.accessToken, json: { type: 'echo', input: {} } })).status).toBe(401);
      }
      await here.until('the stream in this process to end', (client) => client.ended);
      await there.until('the stream in the other process to end', (client) => client.ended);
      expect((await refresh(api, other.refresh)).status).toBe(401);

      // The right password gets the answer a wrong one gets: nothing tells a disabled account apart.
      expect(await loginAnswer(api, email, PASSWORD)).toEqual(wrongPassword);
      expect(wrongPassword).toMatchObject({ status: 401, type: expect.stringMatching(/^application\/problem\+json/), cookie: [] });

      // No way back through a password reset: the token mailed before is spent, and no new one is mailed.
      const confirm = await call(api, '/v1/auth/password-reset/confirm', { json: { token: resetToken, password: 'a brand new passphrase' } });
      expect(confirm.status).toBe(400);
      expect(confirm.body.detail).toBe('the reset token is invalid, used or expired');
      expect((await call(api, '/v1/auth/password-reset', { json: { email } })).status).toBe(202);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await queuedResetTokens(api, email)).toEqual([resetToken]);
      expect((await loginAnswer(api, email, 'a brand new passphrase')).status).toBe(401);

      // Audited: who did it and why, as a security event and in the account's record.
      const actor = expect.stringMatching(/^cli:.+@.+$/);
      expect(logLines(disabled.stderr)).toContainEqual(expect.objectContaining({ event: 'security', kind: 'account_disabled', userId, actor, reason: 'left the company (HR-1234)' }));
      expect(api.logLines).toContainEqual(expect.objectContaining({ event: 'security', kind: 'login_disabled_account', userId }));
      const shown = await platform(['users', 'show', email, '--json'], cliEnv);
      expect(shown.code).toBe(0);
      expect(JSON.parse(shown.stdout)).toEqual({
        user: { id: userId, email, role: 'user', disabled: true, disabledAt: expect.any(String) },
        events: [{ action: 'disabled', actor, reason: 'left the company (HR-1234)', at: expect.any(String) }],
      });

      const enabled = await platform(['users', 'enable', email], cliEnv);
      expect({ code: enabled.code, stderr: enabled.stderr }).toEqual({ code: 0, stderr: '' });
      expect(enabled.stdout).toContain(`enabled ${email} (${userId}, user, enabled): it can sign in again`);
      const back = await login(api, email, PASSWORD);
      expect((await call(second, '/v1/auth/me', { token: back.accessToken })).body).toMatchObject({ id: userId, email });
      // The sessions the disable ended stay ended.
      expect((await refresh(api, other.refresh)).status).toBe(401);
      expect((await call(api, '/v1/auth/me', { token })).status).toBe(401);
      const history = JSON.parse((await platform(['users', 'show', email, '--json'], cliEnv)).stdout) as { events: { action: string }[] };
      expect(history.events.map((event) => event.action)).toEqual(['enabled', 'disabled']);
    } finally {
      await second.close();
    }
  });

  it('enable --reset-password brings a compromised account back only through its owner\'s mailbox: the old password no longer signs in', async () => {
    const { email, userId } = await signUp(api);
    expect((await platform(['users', 'disable', email, '--reason', 'password leaked'], cliEnv)).code).toBe(0);
    const enabled = await platform(['users', 'enable', email, '--reset-password', '--reason', 'owner confirmed by phone', '--json'], cliEnv);
    expect({ code: enabled.code, stderr: enabled.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(enabled.stdout)).toEqual({ user: { id: userId, email, role: 'user', disabled: false, disabledAt: null }, changed: true, sessionsEnded: 0, passwordCleared: true });
    expect((await loginAnswer(api, email, PASSWORD)).status).toBe(401);

    const [mailed] = await queuedResetTokens(api, email);
    expect(mailed).toBeDefined();
    expect((await call(api, '/v1/auth/password-reset/confirm', { json: { token: mailed, password: 'a brand new passphrase' } })).status).toBe(204);
    expect((await loginAnswer(api, email, 'a brand new passphrase')).status).toBe(200);
    const { rows } = await api.db.query<{ action: string; actor: string; reason: string }>('SELECT action, actor, reason FROM account_events WHERE user_id = $1 ORDER BY id', [userId]);
    expect(rows.map((row) => [row.action, row.reason])).toEqual([
      ['disabled', 'password leaked'],
      ['enabled', 'owner confirmed by phone'],
      ['password_cleared', 'owner confirmed by phone'],
    ]);
  });

  it('says what it did in words, and doing it twice changes nothing more', async () => {
    const { email, userId } = await signUp(api);
    const first = await platform(['users', 'disable', email], cliEnv);
    expect({ code: first.code, stderr: first.stderr }).toEqual({ code: 0, stderr: '' });
    expect(first.stdout).toMatch(new RegExp(`^disabled ${email} \\(${userId}, user, disabled since \\S+\\)\n`));
    expect(first.stdout).toContain('1 session(s) ended now');
    expect(first.stdout).toContain(`its queued and running jobs keep running: platform jobs list --owner ${userId}`);

    const again = await platform(['users', 'disable', email, '--json'], cliEnv);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ changed: false, sessionsEnded: 0, user: { disabled: true } });
    const enabled = await platform(['users', 'enable', email], cliEnv);
    expect(enabled.code).toBe(0);
    const enabledAgain = await platform(['users', 'enable', email, '--json'], cliEnv);
    expect(JSON.parse(enabledAgain.stdout)).toMatchObject({ changed: false, user: { disabled: false, disabledAt: null } });
    const { rows } = await api.db.query<{ action: string }>('SELECT action FROM account_events WHERE user_id = $1 ORDER BY id', [userId]);
    expect(rows.map((row) => row.action)).toEqual(['disabled', 'enabled']);
  });

  it('keeps the jobs the account queued: a worker runs them after the disable, and they stay the account\'s', async () => {
    const { email, userId, token } = await signUp(api);
    const submitted = await call<{ id: string }>(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: 'before the disable' } } });
    expect(submitted.status).toBe(202);
    expect((await platform(['users', 'disable', email], cliEnv)).code).toBe(0);
    const worker = await startWorkerFor(api);
    try {
      let row: { status: string; owner_id: string; result: unknown } | undefined;
      for (let attempt = 0; attempt < 400 && row?.status !== 'succeeded'; attempt += 1) {
        if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 50));
        row = (await api.db.query<{ status: string; owner_id: string; result: unknown }>('SELECT status, owner_id, result FROM jobs WHERE id = $1', [submitted.body.id])).rows[0];
      }
      expect(row).toEqual({ status: 'succeeded', owner_id: userId, result: { payload: 'before the disable' } });
    } finally {
      await worker.stop();
    }
  });

  it('refuses an unknown account (exit 1, not-found) and a bad --reason (exit 2), and changes nothing', async () => {
    for (const command of ['disable', 'enable', 'show']) {
      const unknown = await platform(['users', command, `nobody-${randomUUID()}@example.com`, '--json'], cliEnv);
      expect({ command, code: unknown.code, stdout: unknown.stdout, error: (JSON.parse(unknown.stderr) as { error: unknown }).error }).toEqual({
        command,
        code: 1,
        stdout: '',
        error: { kind: 'not-found', message: expect.stringMatching(/^no account with email nobody-.*@example\.com$/), exitCode: 1 },
      });
    }
    const { email, userId } = await signUp(api);
    for (const reason of ['', '   ', 'x'.repeat(501)]) {
      const refused = await platform(['users', 'disable', email, '--reason', reason], cliEnv);
      expect({ code: refused.code, stdout: refused.stdout }).toEqual({ code: 2, stdout: '' });
      expect(refused.stderr).toMatch(/^platform: --reason must (not be empty|be at most 500 characters), got /);
    }
    const { rows } = await api.db.query<{ disabled: boolean }>('SELECT disabled_at IS NOT NULL AS disabled FROM users WHERE id = $1', [userId]);
    expect(rows[0]?.disabled).toBe(false);
  });

  it('with Redis out of reach, still refuses sign-in and refresh, and says (exit 1) that access tokens live on until it is run again', async () => {
    const { email, token } = await signUp(api);
    const session = await login(api, email, PASSWORD);
    const cut = await platform(['users', 'disable', email, '--json'], { ...cliEnv, REDIS_URL: 'redis://127.0.0.1:1' }, undefined, { timeoutMs: 60_000 });
    expect(cut.code).toBe(1);
    const error = (JSON.parse(cut.stderr.trim().split('\n').at(-1) as string) as { error: { kind: string; message: string } }).error;
    expect(error.kind).toBe('failed');
    expect(error.message).toContain(`${email} is disabled and its sessions are ended in PostgreSQL, but the revocation could not be announced through Redis`);
    expect(error.message).toContain('Disabling it again announces it again');
    expect((await loginAnswer(api, email, PASSWORD)).status).toBe(401);
    expect((await refresh(api, session.refresh)).status).toBe(401);
    // Nothing told this process: the token still works, as the message says.
    expect((await call(api, '/v1/auth/me', { token })).status).toBe(200);

    const again = await platform(['users', 'disable', email, '--json'], cliEnv);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ changed: false });
    expect((await call(api, '/v1/auth/me', { token })).status).toBe(401);
    expect((await call(api, '/v1/auth/me', { token: session.accessToken })).status).toBe(401);
  });

  it('gives a sign-in that races the disable no session: it waits for the disable, then is refused', async () => {
    const { email, userId } = await signUp(api);
    const sessionsBefore = (await api.db.query('SELECT 1 FROM sessions WHERE user_id = $1', [userId])).rowCount;
    // A disable caught mid-transaction: the account row is written, not yet committed.
    const disabling = await api.db.connect();
    try {
      await disabling.query('BEGIN');
      await disabling.query('UPDATE users SET disabled_at = now() WHERE id = $1', [userId]);
      const signingIn = loginAnswer(api, email, PASSWORD);
      await waitForLockWaiters(api, 1);
      await disabling.query('COMMIT');
      expect((await signingIn).status).toBe(401);
    } finally {
      disabling.release();
    }
    expect((await api.db.query('SELECT 1 FROM sessions WHERE user_id = $1', [userId])).rowCount).toBe(sessionsBefore);
  });
});

/** Resolves once `count` sessions of the fixture's database wait for a lock. */
async function waitForLockWaiters(api: ApiFixture, count: number): Promise<void> {
  for (let attempt = 0; attempt < 400; attempt += 1) {
    const { rows } = await api.db.query<{ waiting: number }>("SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
    if ((rows[0]?.waiting ?? 0) >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`fewer than ${count} sessions came to wait for a lock`);
}

describe('the last enabled admin', () => {
  let api: ApiFixture;
  let cliEnv: Record<string, string>;

  beforeAll(async () => {
    // A database of its own: the guard counts every admin in it.
    api = await startApi();
    cliEnv = cliEnvOf(api);
  });
  afterAll(() => api?.close());

  async function admin(): Promise<string> {
    const email = `admin-${randomUUID()}@example.com`;
    const created = await platform(['users', 'create-admin', email], cliEnv, `${PASSWORD}\n`);
    expect(created.code).toBe(0);
    return email;
  }

  const roleOf = async (email: string) => (await api.db.query<{ role: string; disabled: boolean }>('SELECT role, disabled_at IS NOT NULL AS disabled FROM users WHERE email = $1', [email])).rows[0];

  it('is neither demoted nor disabled (exit 1, conflict), and can still sign in as admin', async () => {
    const first = await admin();
    for (const args of [['set-role', first, 'user'], ['disable', first]]) {
      const refused = await platform(['users', ...args, '--json'], cliEnv);
      expect({ args, code: refused.code, stdout: refused.stdout, error: (JSON.parse(refused.stderr) as { error: unknown }).error }).toEqual({
        args,
        code: 1,
        stdout: '',
        error: { kind: 'conflict', message: `${first} is the last enabled admin: make another account admin first`, exitCode: 1 },
      });
    }
    expect(await roleOf(first)).toEqual({ role: 'admin', disabled: false });
    const session = await login(api, first, PASSWORD);
    expect((await call(api, '/v1/admin/queues', { token: session.accessToken })).status).toBe(200);
    await api.db.query("UPDATE users SET role = 'user' WHERE role = 'admin'");
  });

  it('does not count a disabled admin: one who cannot sign in is no admin to fall back on', async () => {
    const [first, second] = [await admin(), await admin()];
    expect((await platform(['users', 'disable', second], cliEnv)).code).toBe(0);
    const refused = await platform(['users', 'set-role', first, 'user'], cliEnv);
    expect({ code: refused.code, stderr: refused.stderr }).toEqual({ code: 1, stderr: `platform: ${first} is the last enabled admin: make another account admin first\n` });
    expect((await platform(['users', 'enable', second], cliEnv)).code).toBe(0);
    expect((await platform(['users', 'set-role', first, 'user'], cliEnv)).stdout).toBe(`${first} is now user; its sessions were ended\n`);
    expect(await roleOf(first)).toEqual({ role: 'user', disabled: false });
    expect((await platform(['users', 'set-role', first, 'user'], cliEnv)).stdout).toBe(`${first} is already user; nothing changed\n`);
    await api.db.query("UPDATE users SET role = 'user' WHERE role = 'admin'");
  });

  it.each([
    ['two demotions', ['set-role', 'user'], ['set-role', 'user']],
    ['a demotion and a disable', ['set-role', 'user'], ['disable']],
  ])('of the last two admins at once: %s cannot both succeed', async (_name, one, other) => {
    const [a, b] = [await admin(), await admin()];
    // Hold both admins' rows, so both commands reach their check before either can finish.
    const holder = await api.db.connect();
    let runs;
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM users WHERE email = ANY($1) FOR UPDATE', [[a, b]]);
      const running = Promise.all([
        platform(['users', (one as string[])[0] as string, a, ...(one as string[]).slice(1)], cliEnv),
        platform(['users', (other as string[])[0] as string, b, ...(other as string[]).slice(1)], cliEnv),
      ]);
      await waitForLockWaiters(api, 2);
      await holder.query('COMMIT');
      runs = await running;
    } finally {
      holder.release();
    }
    expect(runs.map((run) => run.code).sort()).toEqual([0, 1]);
    expect(runs.find((run) => run.code === 1)?.stderr).toMatch(/is the last enabled admin: make another account admin first/);
    const { rows } = await api.db.query<{ count: number }>("SELECT count(*)::int AS count FROM users WHERE role = 'admin' AND disabled_at IS NULL");
    expect(rows[0]?.count).toBe(1);
    await api.db.query("UPDATE users SET role = 'user' WHERE role = 'admin'");
  });
});
