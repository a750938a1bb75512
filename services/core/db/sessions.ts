import type { Pool, PoolClient } from 'pg';
import type { Revocation } from '../auth/revocations';
import { CLOCK_TOLERANCE_SECONDS } from '../auth/tokens';
import { inTransaction, type TransactionOptions } from './transaction';
import type { UserRole } from './users';

export type SessionRevokedReason = 'logout' | 'refresh-token-reuse' | 'password-reset' | 'role-change' | 'account-disabled';

export interface RefreshTokenLookup {
  sessionId: string;
  userId: string;
  role: UserRole;
  expiresAt: Date;
  rotatedAt: Date | null;
  sessionRevokedAt: Date | null;
}

const toSeconds = (date: Date) => Math.ceil(date.getTime() / 1000);

/**
 * A revoked session still matters while one of its access tokens may be accepted: until its
 * last `exp`, and the clock skew a verifier grants past it.
 */
const TOKENS_STILL_ACCEPTED = `access_expires_at > now() - interval '${CLOCK_TOLERANCE_SECONDS} seconds'`;

/** Rows one statement of the purge of expired credentials deletes at most, so none holds many row locks for long. */
const CREDENTIAL_PURGE_BATCH = 1_000;

/** Rows the purge of expired credentials deleted, by table. */
export interface PurgedCredentials {
  refreshTokens: number;
  sessions: number;
  resetTokens: number;
}

/** Sessions (refresh-token families), their refresh tokens (by SHA-256 only) and password-reset tokens. */
export class SessionRepository {
  constructor(private readonly pool: Pool) {}

  /**
   * Starts a session for a sign-in whose password was checked against `passwordHash` and whose
   * access token states `role`; false, and nothing stored, when the account is disabled (or
   * gone), or its password or role has changed since. A sign-in reads the account and checks the
   * password before its session is stored (tens of milliseconds of argon2, seconds under a flood
   * of sign-ins): a reset or a role change that commits between the two ends the sessions it
   * finds, and must not be outlived by one stored after it.
   */
  async create(session: { id: string; userId: string; accessExpiresAt: Date; passwordHash: string; role: UserRole }, firstToken: { hash: Buffer; expiresAt: Date }): Promise<boolean> {
    return this.transaction(async (client) => {
      if (!(await this.lockEnabledAccount(client, session.userId, 'share', session))) return false;
      await client.query('INSERT INTO sessions (id, user_id, access_expires_at) VALUES ($1, $2, $3)', [session.id, session.userId, session.accessExpiresAt]);
      await client.query('INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)', [firstToken.hash, session.id, firstToken.expiresAt]);
      return true;
    });
  }

  async findRefreshToken(hash: Buffer): Promise<RefreshTokenLookup | undefined> {
    const { rows } = await this.pool.query<{ session_id: string; user_id: string; role: UserRole; expires_at: Date; rotated_at: Date | null; revoked_at: Date | null }>(
      `SELECT t.session_id, s.user_id, u.role, t.expires_at, t.rotated_at, s.revoked_at
         FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id JOIN users u ON u.id = s.user_id
        WHERE t.token_hash = $1`,
      [hash],
    );
    const row = rows[0];
    return row && { sessionId: row.session_id, userId: row.user_id, role: row.role, expiresAt: row.expires_at, rotatedAt: row.rotated_at, sessionRevokedAt: row.revoked_at };
  }

  /**
   * Exchanges a refresh token for the next one of its session. A token exchanged already is
   * exchanged again only when that exchange was the session's last (tokens superseded since
   * were never presented and do not count) and came within `reexchangeWithinMs`: its answer
   * was lost on the way (a reload cut the request short, so the browser never stored the
   * cookie it set), and the token it gave, which nobody then holds, is superseded. Several
   * reloads in a row each cut one short when a browser reopens several tabs. False otherwise
   * (reuse), or when the session was revoked.
   */
  async rotate(previousHash: Buffer, next: { hash: Buffer; expiresAt: Date }, sessionId: string, accessExpiresAt: Date, reexchangeWithinMs: number): Promise<boolean> {
    return this.transaction(async (client) => {
      // The session's row first: exchanges of one session's tokens take turns, so "its last exchange" holds until commit.
      const live = await client.query(
        'UPDATE sessions SET access_expires_at = GREATEST(access_expires_at, $2) WHERE id = $1 AND revoked_at IS NULL',
        [sessionId, accessExpiresAt],
      );
      let rotated = live.rowCount === 1 ? await client.query('UPDATE refresh_tokens SET rotated_at = now() WHERE token_hash = $1 AND rotated_at IS NULL', [previousHash]) : undefined;
      if (rotated?.rowCount === 0) {
        // Tokens superseded by earlier re-exchanges were never presented: they do not make the previous token's exchange any less its session's last.
        rotated = await client.query(
          `UPDATE refresh_tokens SET rotated_at = now(), superseded = true
            WHERE session_id = $2 AND rotated_at IS NULL
              AND EXISTS (
                SELECT 1 FROM refresh_tokens previous
                 WHERE previous.token_hash = $1 AND previous.session_id = $2 AND previous.rotated_at > now() - $3 * interval '1 millisecond'
                   AND NOT EXISTS (SELECT 1 FROM refresh_tokens later WHERE later.session_id = $2 AND later.rotated_at > previous.rotated_at AND NOT later.superseded))`,
          [previousHash, sessionId, reexchangeWithinMs],
        );
      }
      if (rotated?.rowCount !== 1) return false;
      await client.query('INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)', [next.hash, sessionId, next.expiresAt]);
      return true;
    }, { commitIf: (exchanged) => exchanged });
  }

  /**
   * Revokes the session. The revocation to announce comes back also for a session revoked
   * earlier whose access tokens may be unexpired: a logout repeated because the first one's
   * announcement through Redis failed (after its revoke committed) then announces again what
   * the first missed, instead of nothing. The reason stays the first revoke's.
   */
  async revokeSession(sessionId: string, reason: SessionRevokedReason): Promise<Revocation[]> {
    // Both parts read the snapshot before the update: a session revoked now comes from the first only.
    const { rows } = await this.pool.query<{ id: string; access_expires_at: Date }>(
      `WITH revoked AS (
         UPDATE sessions SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING id, access_expires_at
       )
       SELECT id, access_expires_at FROM revoked
       UNION ALL
       SELECT id, access_expires_at FROM sessions WHERE id = $1 AND revoked_at IS NOT NULL AND ${TOKENS_STILL_ACCEPTED}`,
      [sessionId, reason],
    );
    return rows.map((row) => ({ kind: 'session', id: row.id, until: toSeconds(row.access_expires_at) }));
  }

  async revokeUserSessions(userId: string, reason: SessionRevokedReason, client: Pick<Pool, 'query'> = this.pool): Promise<Revocation[]> {
    const { rows } = await client.query<{ id: string; access_expires_at: Date }>(
      `UPDATE sessions SET revoked_at = now(), revoked_reason = $2 WHERE user_id = $1 AND revoked_at IS NULL RETURNING id, access_expires_at`,
      [userId, reason],
    );
    return rows.map((row) => ({ kind: 'session', id: row.id, until: toSeconds(row.access_expires_at) }));
  }

  /**
   * For a disabled account, in the transaction that disables it: revokes its live sessions and
   * spends its unused reset tokens. The revocations returned cover every session of the user
   * whose access tokens may still be unexpired, those revoked earlier too, so disabling the
   * account again announces them again (after an announcement that failed).
   */
  async revokeForDisabledAccount(userId: string, client: Pick<Pool, 'query'>): Promise<{ ended: number; revocations: Revocation[] }> {
    const ended = await this.revokeUserSessions(userId, 'account-disabled', client);
    await client.query('UPDATE password_reset_tokens SET used_at = now() WHERE user_id = $1 AND used_at IS NULL', [userId]);
    const { rows } = await client.query<{ id: string; access_expires_at: Date }>(
      `SELECT id, access_expires_at FROM sessions WHERE user_id = $1 AND revoked_at IS NOT NULL AND ${TOKENS_STILL_ACCEPTED}`,
      [userId],
    );
    return { ended: ended.length, revocations: rows.map((row) => ({ kind: 'session', id: row.id, until: toSeconds(row.access_expires_at) })) };
  }

  /** Revoked sessions whose access tokens may still be unexpired: the denylist's durable part. */
  async revokedStillRelevant(): Promise<Revocation[]> {
    const { rows } = await this.pool.query<{ id: string; access_expires_at: Date }>(
      `SELECT id, access_expires_at FROM sessions WHERE revoked_at IS NOT NULL AND ${TOKENS_STILL_ACCEPTED}`,
    );
    return rows.map((row) => ({ kind: 'session', id: row.id, until: toSeconds(row.access_expires_at) }));
  }

  /**
   * Deletes what can no longer sign anybody in, a batch at a time: refresh tokens past their
   * expiry, sessions that nothing can renew or deny any more (their access tokens expired, and
   * revoked or holding no unexpired refresh token), and reset tokens past their expiry. Every
   * sign-in and every refresh adds a row, so without this the tables grow for as long as the
   * platform runs. An expired refresh token is refused whether or not its row is there; only
   * its presentation after expiry is no longer told apart as reuse. A session whose row a
   * refresh holds is skipped and looked at again next time.
   */
  async purgeExpired(): Promise<PurgedCredentials> {
    const purged: PurgedCredentials = { refreshTokens: 0, sessions: 0, resetTokens: 0 };
    const statements: [keyof PurgedCredentials, string][] = [
      [
        'refreshTokens',
        `WITH doomed AS (SELECT token_hash FROM refresh_tokens WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)
         DELETE FROM refresh_tokens t USING doomed WHERE t.token_hash = doomed.token_hash`,
      ],
      [
        'sessions',
        `WITH doomed AS (
           SELECT s.id FROM sessions s
            WHERE NOT (${TOKENS_STILL_ACCEPTED})
              AND (s.revoked_at IS NOT NULL OR NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.session_id = s.id AND t.expires_at > now()))
            LIMIT $1 FOR UPDATE SKIP LOCKED)
         DELETE FROM sessions s USING doomed WHERE s.id = doomed.id`,
      ],
      [
        'resetTokens',
        `WITH doomed AS (SELECT token_hash FROM password_reset_tokens WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)
         DELETE FROM password_reset_tokens t USING doomed WHERE t.token_hash = doomed.token_hash`,
      ],
    ];
    for (const [kind, text] of statements) {
      for (;;) {
        const { rowCount } = await this.pool.query(text, [CREDENTIAL_PURGE_BATCH]);
        purged[kind] += rowCount ?? 0;
        if ((rowCount ?? 0) < CREDENTIAL_PURGE_BATCH) break;
      }
    }
    return purged;
  }

  /** A new reset token for the user; earlier unused ones stop working. */
  async createResetToken(userId: string, hash: Buffer, expiresAt: Date): Promise<void> {
    await this.transaction(async (client) => {
      await client.query('UPDATE password_reset_tokens SET used_at = now() WHERE user_id = $1 AND used_at IS NULL', [userId]);
      await client.query('INSERT INTO password_reset_tokens (token_hash, user_id, expires_at) VALUES ($1, $2, $3)', [hash, userId, expiresAt]);
    });
  }

  /**
   * Spends a reset token and sets the new password hash, revoking every session of the
   * user, in one transaction. Undefined when the token is unknown, used or expired, or its
   * account is disabled.
   */
  async resetPassword(hash: Buffer, passwordHash: string): Promise<{ userId: string; revocations: Revocation[] } | undefined> {
    return this.transaction(async (client) => {
      // The account is locked first, as a disable locks it before the reset tokens: in one order, the two cannot deadlock.
      const { rows: owners } = await client.query<{ user_id: string }>('SELECT user_id FROM password_reset_tokens WHERE token_hash = $1', [hash]);
      const owner = owners[0]?.user_id;
      // A disabled account's token is refused like a spent one: the reset must not bring the account back.
      if (!owner || !(await this.lockEnabledAccount(client, owner, 'update'))) return undefined;
      const { rowCount } = await client.query('UPDATE password_reset_tokens SET used_at = now() WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()', [hash]);
      if (rowCount !== 1) return undefined;
      await client.query('UPDATE users SET password_hash = $2 WHERE id = $1', [owner, passwordHash]);
      const revocations = await this.revokeUserSessions(owner, 'password-reset', client);
      return { userId: owner, revocations };
    });
  }

  /**
   * Whether the account is enabled, its row locked until the transaction ends: shared to start
   * a session (sign-ins of one account need not wait for each other), for update where the row
   * is written next. A disable that committed first is seen here; one that comes later waits
   * for this transaction, and then finds what it wrote. With `expected`, also whether the
   * password and the role are still those (a reset or a role change is seen the same way).
   */
  private async lockEnabledAccount(client: PoolClient, userId: string, mode: 'share' | 'update', expected?: { passwordHash: string; role: UserRole }): Promise<boolean> {
    const lock = mode === 'share' ? 'FOR SHARE' : 'FOR NO KEY UPDATE';
    const { rowCount } =
      expected === undefined
        ? await client.query(`SELECT 1 FROM users WHERE id = $1 AND disabled_at IS NULL ${lock}`, [userId])
        : await client.query(`SELECT 1 FROM users WHERE id = $1 AND disabled_at IS NULL AND password_hash = $2 AND role = $3 ${lock}`, [userId, expected.passwordHash, expected.role]);
    return rowCount === 1;
  }

  transaction<T>(work: (client: PoolClient) => Promise<T>, options?: TransactionOptions<T>): Promise<T> {
    return inTransaction(this.pool, work, options);
  }
}
