import type { Pool, PoolClient } from 'pg';
import { ConflictError } from '../errors';
import { inTransaction } from './transaction';

export type UserRole = 'user' | 'admin';

export interface UserRecord {
  id: string;
  email: string;
  passwordHash: string;
  role: UserRole;
  createdAt: Date;
  /** Set while the account is disabled. */
  disabledAt: Date | null;
}

interface UserRow {
  id: string;
  email: string;
  password_hash: string;
  role: UserRole;
  created_at: Date;
  disabled_at: Date | null;
}

const COLUMNS = 'id, email, password_hash, role, created_at, disabled_at';

function toRecord(row: UserRow): UserRecord {
  return { id: row.id, email: row.email, passwordHash: row.password_hash, role: row.role, createdAt: row.created_at, disabledAt: row.disabled_at };
}

/** What an operator did to an account (account_events). */
export type AccountAction = 'disabled' | 'enabled' | 'password_cleared' | 'role_changed' | 'admin_created';

export interface AccountEvent {
  action: AccountAction;
  /** The new role, for role_changed and admin_created. */
  role?: UserRole;
  /** Who did it, as the audit trail shows it: `cli:<os user>@<host>` for the CLI. */
  actor: string;
  reason?: string;
  at: Date;
}

/**
 * One change to an account's standing, inside the transaction `UserRepository.change` opened:
 * its writes commit together with the account_events row that records them.
 */
export interface AccountChangeScope {
  client: PoolClient;
  /** The account as it stands, locked until the transaction ends. */
  user: UserRecord;
  /** Returns the account as changed. */
  setRole(role: UserRole): Promise<UserRecord>;
  /** Disables (true) or enables the account; returns it as changed, or undefined when it already stood so. */
  setDisabled(disabled: boolean): Promise<UserRecord | undefined>;
  setPasswordHash(passwordHash: string): Promise<void>;
  record(event: Omit<AccountEvent, 'at'>): Promise<void>;
}

/** Users table access. Emails compare case-insensitively, matching the unique index on lower(email). */
export interface UserRepository {
  /** Throws ConflictError when the email is taken. */
  insert(user: { id: string; email: string; passwordHash: string; role?: UserRole }, event?: Omit<AccountEvent, 'at'>): Promise<UserRecord>;
  findByEmail(email: string): Promise<UserRecord | undefined>;
  findById(id: string): Promise<UserRecord | undefined>;
  /** Replaces the hash when it still is `previousHash` (a rehash must not undo a concurrent reset); whether it did. */
  replacePasswordHash(id: string, previousHash: string, passwordHash: string): Promise<boolean>;
  /**
   * Runs `work` on the account in one transaction, the account's row locked. With
   * `endsAdmin` (a demotion or a disable), the enabled admins are locked first, always in id
   * order, and a change that would leave none throws ConflictError before `work` runs: of two
   * such changes at once, the second waits for the first and then sees its outcome, so they
   * cannot both take away one of the last two admins. Undefined when there is no such account.
   */
  change<T>(id: string, options: { endsAdmin: boolean }, work: (scope: AccountChangeScope) => Promise<T>): Promise<T | undefined>;
  /** The newest operator actions on the account, newest first. */
  events(id: string, limit: number): Promise<AccountEvent[]>;
}

/** The platform's own account (migration 0003): owns internal jobs such as mails. */
export const PLATFORM_USER_ID = '00000000-0000-0000-0000-000000000000';

async function recordEvent(client: Pick<PoolClient, 'query'>, userId: string, event: Omit<AccountEvent, 'at'>): Promise<void> {
  await client.query('INSERT INTO account_events (user_id, action, role, actor, reason) VALUES ($1, $2, $3, $4, $5)', [userId, event.action, event.role ?? null, event.actor, event.reason ?? null]);
}

export function createUserRepository(pool: Pool): UserRepository {
  return {
    async insert(user, event) {
      const write = async (db: Pick<Pool, 'query'>) => {
        const { rows } = await db.query<UserRow>({
          name: 'users_insert',
          // A taken address is an everyday answer of registration, not an error: DO NOTHING
          // keeps it out of PostgreSQL's log, where a unique violation is logged as ERROR.
          text: `INSERT INTO users (id, email, password_hash, role) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING ${COLUMNS}`,
          values: [user.id, user.email, user.passwordHash, user.role ?? 'user'],
        });
        const row = rows[0];
        if (!row) throw new ConflictError('an account with this email already exists');
        if (event) await recordEvent(db, user.id, event);
        return toRecord(row);
      };
      // Registration records no event: one statement, no transaction around it.
      return event ? inTransaction(pool, write) : write(pool);
    },
    async findByEmail(email) {
      const { rows } = await pool.query<UserRow>({
        name: 'users_find_by_email',
        text: `SELECT ${COLUMNS} FROM users WHERE lower(email) = lower($1)`,
        values: [email],
      });
      return rows[0] && toRecord(rows[0]);
    },
    async findById(id) {
      const { rows } = await pool.query<UserRow>({
        name: 'users_find_by_id',
        text: `SELECT ${COLUMNS} FROM users WHERE id = $1`,
        values: [id],
      });
      return rows[0] && toRecord(rows[0]);
    },
    async replacePasswordHash(id, previousHash, passwordHash) {
      const { rowCount } = await pool.query('UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2', [id, previousHash, passwordHash]);
      return rowCount === 1;
    },
    async change(id, { endsAdmin }, work) {
      return inTransaction(pool, async (client) => {
        // Statements of their own: in READ COMMITTED a locking read that waited re-reads each row it
        // waited for, so an admin demoted or disabled meanwhile is no longer counted. NO KEY UPDATE, as
        // the id never changes: rows that reference the account (a reset token, a job) can still be inserted.
        const admins = endsAdmin
          ? (await client.query<{ id: string }>("SELECT id FROM users WHERE role = 'admin' AND disabled_at IS NULL ORDER BY id FOR NO KEY UPDATE")).rows.map((row) => row.id)
          : [];
        const { rows } = await client.query<UserRow>(`SELECT ${COLUMNS} FROM users WHERE id = $1 FOR NO KEY UPDATE`, [id]);
        const row = rows[0];
        if (!row) return undefined;
        const user = toRecord(row);
        if (endsAdmin && user.role === 'admin' && user.disabledAt === null && !admins.some((admin) => admin !== user.id)) {
          throw new ConflictError(`${user.email} is the last enabled admin: make another account admin first`);
        }
        return work({
          client,
          user,
          async setRole(role) {
            const { rows: updated } = await client.query<UserRow>(`UPDATE users SET role = $2 WHERE id = $1 RETURNING ${COLUMNS}`, [id, role]);
            return toRecord(updated[0] as UserRow);
          },
          async setDisabled(disabled) {
            const { rows: updated } = await client.query<UserRow>(
              disabled
                ? `UPDATE users SET disabled_at = now() WHERE id = $1 AND disabled_at IS NULL RETURNING ${COLUMNS}`
                : `UPDATE users SET disabled_at = NULL WHERE id = $1 AND disabled_at IS NOT NULL RETURNING ${COLUMNS}`,
              [id],
            );
            return updated[0] && toRecord(updated[0]);
          },
          async setPasswordHash(passwordHash) {
            await client.query('UPDATE users SET password_hash = $2 WHERE id = $1', [id, passwordHash]);
          },
          record: (event) => recordEvent(client, id, event),
        });
      });
    },
    async events(id, limit) {
      const { rows } = await pool.query<{ action: AccountAction; role: UserRole | null; actor: string; reason: string | null; created_at: Date }>(
        'SELECT action, role, actor, reason, created_at FROM account_events WHERE user_id = $1 ORDER BY id DESC LIMIT $2',
        [id, limit],
      );
      return rows.map((row) => ({ action: row.action, ...(row.role && { role: row.role }), actor: row.actor, ...(row.reason !== null && { reason: row.reason }), at: row.created_at }));
    },
  };
}
