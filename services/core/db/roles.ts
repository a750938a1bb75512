import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type { ClientBase } from 'pg';

/** A login role and its password. */
export interface LoginRole {
  user: string;
  password: string;
}

export interface DatabaseRoles {
  /** What the api and worker connect as: rows of the platform's tables, no DDL, no migration ledger writes. */
  app?: LoginRole;
  /** What the queue autoscaler connects as: the `status`, `owner_id` and `type` columns of `jobs`, nothing else. */
  scaler?: LoginRole;
}

/** The migration ledger: the app may read it (`platform doctor` lists pending migrations) but never write it. */
const LEDGER_TABLE = 'schema_migrations';
/** Longest statement the autoscaler may run: its one count of the queued and running jobs. */
const SCALER_STATEMENT_TIMEOUT = '5s';
const SCRAM_ITERATIONS = 4096;

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802/7677 with
 * PostgreSQL's `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` layout). Sent
 * instead of the password, so the plaintext never reaches the server, its statement log
 * or `pg_stat_statements`. Passwords are printable ASCII (the contract's rule), which
 * SASLprep leaves unchanged.
 */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = SCRAM_ITERATIONS): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** Creates the role, or updates its password; either way a plain login role without extra attributes. */
async function upsertLoginRole(client: ClientBase, role: LoginRole): Promise<void> {
  const user = client.escapeIdentifier(role.user);
  const verifier = client.escapeLiteral(scramVerifier(role.password));
  const exists = (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role.user])).rowCount === 1;
  await client.query(`${exists ? 'ALTER' : 'CREATE'} ROLE ${user} WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD ${verifier}`);
}

/** Login to the database and the schema, and nothing left of what the role held on its tables and sequences. */
function freshGrants(database: string, user: string): string[] {
  return [
    `GRANT CONNECT ON DATABASE ${database} TO ${user}`,
    `GRANT USAGE ON SCHEMA public TO ${user}`,
    `REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${user}`,
    `REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM ${user}`,
  ];
}

/**
 * Grants exactly what each role needs, after revoking whatever it held on the schema's
 * tables and sequences, so a privilege granted by hand does not outlive the next run.
 * Default privileges give the app the same rights on tables later migrations create.
 */
async function grantApp(client: ClientBase, database: string, role: string): Promise<void> {
  const user = client.escapeIdentifier(role);
  for (const statement of [
    ...freshGrants(database, user),
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${user}`,
    `REVOKE INSERT, UPDATE, DELETE ON ${LEDGER_TABLE} FROM ${user}`,
    `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${user}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${user}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO ${user}`,
  ]) {
    await client.query(statement);
  }
}

async function grantScaler(client: ClientBase, database: string, role: string): Promise<void> {
  const user = client.escapeIdentifier(role);
  for (const statement of [
    ...freshGrants(database, user),
    // Column privileges: it can count jobs by status, owner and type (backlogQuery), and read nothing a user submitted.
    `GRANT SELECT (status, owner_id, type) ON jobs TO ${user}`,
    `ALTER ROLE ${user} SET statement_timeout = ${client.escapeLiteral(SCALER_STATEMENT_TIMEOUT)}`,
  ]) {
    await client.query(statement);
  }
}

/**
 * Creates or updates the platform's login roles with least privilege, connected as the
 * schema's owner after the migrations ran (so every table exists). Idempotent: each run
 * sets the passwords given and re-derives every grant. One transaction: a failure leaves
 * the roles as they were.
 */
export async function ensureDatabaseRoles(client: ClientBase, roles: DatabaseRoles): Promise<string[]> {
  const managed = [roles.app, roles.scaler].filter((role): role is LoginRole => role !== undefined);
  if (managed.length === 0) return [];
  if (new Set(managed.map((role) => role.user)).size !== managed.length) throw new Error('the app and scaler roles must be different roles');
  const database = client.escapeIdentifier((await client.query<{ name: string }>('SELECT current_database() AS name')).rows[0]?.name ?? '');
  await client.query('BEGIN');
  try {
    // Before PostgreSQL 15 every role may create objects in `public`; the app role must not.
    await client.query('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
    if (roles.app) {
      await upsertLoginRole(client, roles.app);
      await grantApp(client, database, roles.app.user);
    }
    if (roles.scaler) {
      await upsertLoginRole(client, roles.scaler);
      await grantScaler(client, database, roles.scaler.user);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
  return managed.map((role) => role.user);
}
