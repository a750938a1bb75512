/**
 * A logout revokes its session in PostgreSQL, then announces the revocation through Redis
 * so every API process refuses the session's access tokens at once. When the announcement
 * fails after the revoke committed, the caller is answered with an error and asks again
 * (the console keeps the sign-out owed until the API confirms it): that second logout must
 * announce the revocation the first could not, though the session is already revoked.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import type { Revocation } from '../../../services/core/auth/revocations';
import { createAuthService, type AuthEnv } from '../../../services/core/auth/service';
import { CLOCK_TOLERANCE_SECONDS, type AccessTokens } from '../../../services/core/auth/tokens';
import { runMigrations } from '../../../services/core/db/migrate';
import { SessionRepository } from '../../../services/core/db/sessions';
import type { UserRepository } from '../../../services/core/db/users';
import { createLogger } from '../../../services/core/logger';
import { useSharedServices } from '../../harness/shared';
import { createUser } from '../engine/fixture';

describe('logout after an announcement that failed', () => {
  let pool: Pool;
  let sessions: SessionRepository;
  let userId: string;

  beforeAll(async () => {
    const servers = await useSharedServices();
    await runMigrations(servers.databaseUrl);
    pool = new Pool({ connectionString: servers.databaseUrl, max: 2 });
    sessions = new SessionRepository(pool);
    userId = await createUser(servers.databaseUrl);
  });
  afterAll(async () => {
    await pool?.end();
  });

  /** A session of the user, and the refresh token that names it. */
  async function session(accessExpiresAt: Date): Promise<{ id: string; refreshToken: string }> {
    const id = randomUUID();
    const refreshToken = randomBytes(32).toString('base64url');
    const hash = createHash('sha256').update(refreshToken, 'utf8').digest();
    // createUser stores this hash and role.
    await sessions.create({ id, userId, accessExpiresAt, passwordHash: 'not-a-hash', role: 'user' }, { hash, expiresAt: new Date(Date.now() + 3_600_000) });
    return { id, refreshToken };
  }

  /** An auth service whose announcements fail while `redisAway.value` is true; what got through lands in `announced`. */
  function authService(redisAway: { value: boolean }, announced: Revocation[][]) {
    const env: AuthEnv = { PUBLIC_URL: 'http://localhost:8080', PASSWORD_RESET_TTL_SECONDS: 1800, REFRESH_TOKEN_TTL_SECONDS: 3600 };
    return createAuthService({
      env,
      users: {} as UserRepository,
      sessions,
      tokens: {} as AccessTokens,
      revoke: async (revocations) => {
        if (redisAway.value) throw new Error('Command timed out');
        announced.push(revocations);
      },
      sendMail: async () => undefined,
      security: () => undefined,
      log: createLogger({ service: 'test', level: 'silent' }),
    });
  }

  it('announces the revocation again when asked again', async () => {
    const accessExpiresAt = new Date(Date.now() + 900_000);
    const { id, refreshToken } = await session(accessExpiresAt);
    const redisAway = { value: true };
    const announced: Revocation[][] = [];
    const auth = authService(redisAway, announced);

    await expect(auth.logout(undefined, refreshToken)).rejects.toThrow('Command timed out');
    const [{ revoked_reason: reason }] = (await pool.query('SELECT revoked_reason FROM sessions WHERE id = $1', [id])).rows;
    expect(reason).toBe('logout');

    redisAway.value = false;
    await auth.logout(undefined, refreshToken);
    expect(announced).toEqual([[{ kind: 'session', id, until: Math.ceil(accessExpiresAt.getTime() / 1000) }]]);
  });

  it('announces nothing for a session revoked earlier whose access tokens have all expired, and the skew a verifier grants past that', async () => {
    const { id, refreshToken } = await session(new Date(Date.now() - (CLOCK_TOLERANCE_SECONDS + 5) * 1_000));
    await pool.query("UPDATE sessions SET revoked_at = now(), revoked_reason = 'password-reset' WHERE id = $1", [id]);
    const announced: Revocation[][] = [];

    await authService({ value: false }, announced).logout(undefined, refreshToken);

    expect(announced).toEqual([]);
    const [{ revoked_reason: reason }] = (await pool.query('SELECT revoked_reason FROM sessions WHERE id = $1', [id])).rows;
    expect(reason).toBe('password-reset');
  });
});
