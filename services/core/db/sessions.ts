import type { Pool, PoolClient } from 'pg';
import type { Revocation } from '../auth/revocations';
import { inTransaction } from './transaction';
import type { UserRole } from './users';

export type SessionRevokedReason = 'logout' | 'refresh-token-reuse' | 'password-reset' | 'role-change';

export interface RefreshTokenLookup {
  sessionId: string;
  userId: string;
  role: UserRole;
  expiresAt: Date;
  rotatedAt: Date | null;
  sessionRevokedAt: Date | null;
}

const toSeconds = (date: Date) => Math.ceil(date.getTime() / 1000);

/** Sessions (refresh-token families), their refresh tokens (by SHA-256 only) and password-reset tokens. */
export class SessionRepository {
  constructor(private readonly pool: Pool) {}

  async create(session: { id: string; userId: string; accessExpiresAt: Date }, firstToken: { hash: Buffer; expiresAt: Date }): Promise<void> {
    await this.transaction(async (client) => {
      await client.query('INSERT INTO sessions (id, user_id, access_expires_at) VALUES ($1, $2, $3)', [session.id, session.userId, session.accessExpiresAt]);
      await client.query('INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)', [firstToken.hash, session.id, firstToken.expiresAt]);
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
   * Exchanges a refresh token for the next one of its session. False when the token was
   * exchanged already (a concurrent refresh won: that is reuse) or the session was revoked.
   */
  async rotate(previousHash: Buffer, next: { hash: Buffer; expiresAt: Date }, sessionId: string, accessExpiresAt: Date): Promise<boolean> {
    return this.transaction(async (client) => {
      const rotated = await client.query('UPDATE refresh_tokens SET rotated_at = now() WHERE token_hash = $1 AND rotated_at IS NULL', [previousHash]);
      const live = await client.query(
        'UPDATE sessions SET access_expires_at = GREATEST(access_expires_at, $2) WHERE id = $1 AND revoked_at IS NULL',
        [sessionId, accessExpiresAt],
      );
      if (rotated.rowCount !== 1 || live.rowCount !== 1) {
        await client.query('ROLLBACK');
        return false;
      }
      await client.query('INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)', [next.hash, sessionId, next.expiresAt]);
      return true;
    });
  }

  /** Revokes the sessions and returns what the denylist must hold for them. */
  async revokeSession(sessionId: string, reason: SessionRevokedReason): Promise<Revocation[]> {
    const { rows } = await this.pool.query<{ id: string; access_expires_at: Date }>(
      `UPDATE sessions SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING id, access_expires_at`,
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

  /** Revoked sessions whose access tokens may still be unexpired: the denylist's durable part. */
  async revokedStillRelevant(): Promise<Revocation[]> {
    const { rows } = await this.pool.query<{ id: string; access_expires_at: Date }>(
      'SELECT id, access_expires_at FROM sessions WHERE revoked_at IS NOT NULL AND access_expires_at > now()',
    );
    return rows.map((row) => ({ kind: 'session', id: row.id, until: toSeconds(row.access_expires_at) }));
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
   * user, in one transaction. Undefined when the token is unknown, used or expired.
   */
  async resetPassword(hash: Buffer, passwordHash: string): Promise<{ userId: string; revocations: Revocation[] } | undefined> {
    return this.transaction(async (client) => {
      const { rows } = await client.query<{ user_id: string }>(
        'UPDATE password_reset_tokens SET used_at = now() WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING user_id',
        [hash],
      );
      const userId = rows[0]?.user_id;
      if (!userId) return undefined;
      await client.query('UPDATE users SET password_hash = $2 WHERE id = $1', [userId, passwordHash]);
      const revocations = await this.revokeUserSessions(userId, 'password-reset', client);
      return { userId, revocations };
    });
  }

  transaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, work);
  }
}
