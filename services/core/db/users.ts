import type { Pool } from 'pg';
import { ConflictError } from '../errors';

export type UserRole = 'user' | 'admin';

export interface UserRecord {
  id: string;
  email: string;
  passwordHash: string;
  role: UserRole;
  createdAt: Date;
}

interface UserRow {
  id: string;
  email: string;
  password_hash: string;
  role: UserRole;
  created_at: Date;
}

const UNIQUE_VIOLATION = '23505';

function toRecord(row: UserRow): UserRecord {
  return { id: row.id, email: row.email, passwordHash: row.password_hash, role: row.role, createdAt: row.created_at };
}

/** Users table access. Emails compare case-insensitively, matching the unique index on lower(email). */
export interface UserRepository {
  /** Throws ConflictError when the email is taken. */
  insert(user: { id: string; email: string; passwordHash: string; role?: UserRole }): Promise<UserRecord>;
  findByEmail(email: string): Promise<UserRecord | undefined>;
  findById(id: string): Promise<UserRecord | undefined>;
  /** Replaces the hash when it still is `previousHash` (a rehash must not undo a concurrent reset). */
  replacePasswordHash(id: string, previousHash: string, passwordHash: string): Promise<void>;
  /** Returns false when there is no such account. */
  setRole(id: string, role: UserRole): Promise<boolean>;
}

/** The platform's own account (migration 0003): owns internal jobs such as mails. */
export const PLATFORM_USER_ID = '00000000-0000-0000-0000-000000000000';

export function createUserRepository(pool: Pool): UserRepository {
  return {
    async insert(user) {
      try {
        const { rows } = await pool.query<UserRow>({
          name: 'users_insert',
          text: 'INSERT INTO users (id, email, password_hash, role) VALUES ($1, $2, $3, $4) RETURNING id, email, password_hash, role, created_at',
          values: [user.id, user.email, user.passwordHash, user.role ?? 'user'],
        });
        return toRecord(rows[0] as UserRow);
      } catch (error) {
        if ((error as { code?: string }).code === UNIQUE_VIOLATION) throw new ConflictError('an account with this email already exists');
        throw error;
      }
    },
    async findByEmail(email) {
      const { rows } = await pool.query<UserRow>({
        name: 'users_find_by_email',
        text: 'SELECT id, email, password_hash, role, created_at FROM users WHERE lower(email) = lower($1)',
        values: [email],
      });
      return rows[0] && toRecord(rows[0]);
    },
    async findById(id) {
      const { rows } = await pool.query<UserRow>({
        name: 'users_find_by_id',
        text: 'SELECT id, email, password_hash, role, created_at FROM users WHERE id = $1',
        values: [id],
      });
      return rows[0] && toRecord(rows[0]);
    },
    async replacePasswordHash(id, previousHash, passwordHash) {
      await pool.query('UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2', [id, previousHash, passwordHash]);
    },
    async setRole(id, role) {
      const { rowCount } = await pool.query('UPDATE users SET role = $2 WHERE id = $1', [id, role]);
      return rowCount === 1;
    },
  };
}
