import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Pool } from 'pg';
import type { DatabaseSslMode } from '../../contract';
import type { Logger } from '../logger';
import { redactUrl } from '../logger';
import { ClosingClient } from './client';
import { ensureDatabaseRoles, type DatabaseRoles } from './roles';
import { databaseSsl } from './tls';

/** Arbitrary but fixed: every starter of any version of the platform takes the same lock. */
export const MIGRATION_LOCK_KEY = 7_203_114_520;

const MIGRATION_FILE = /^\d{4}_[a-z0-9_]+\.sql$/;

/**
 * The repository root: the nearest directory above this file holding package.json. Works
 * from the TypeScript sources (services/core/db) and from the compiled tree
 * (dist/services/core/db), which has no package.json of its own.
 */
export function repositoryRoot(): string {
  let directory = __dirname;
  for (;;) {
    if (existsSync(path.join(directory, 'package.json'))) return directory;
    const parent = path.dirname(directory);
    if (parent === directory) throw new Error(`no package.json above ${__dirname}: cannot locate services/migrations`);
    directory = parent;
  }
}

export function migrationsDirectory(): string {
  return path.join(repositoryRoot(), 'services', 'migrations');
}

/** Migration file names in the order they apply. */
export async function listMigrations(directory = migrationsDirectory()): Promise<string[]> {
  const entries = await readdir(directory);
  return entries.filter((name) => MIGRATION_FILE.test(name)).sort();
}

const CREATE_LEDGER = `CREATE TABLE IF NOT EXISTS schema_migrations (
  name       text PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;

/**
 * How long one try of a migration waits for a table lock. DDL waiting for a lock queues
 * every later statement on that table behind it (the api's and workers' reads and writes
 * alike), so a migration behind a long transaction would stop the platform for as long as
 * that transaction lasts: it gives way after this and tries again.
 */
const MIGRATION_LOCK_WAIT_MS = 2_000;
/** How long a migration keeps trying to take its locks before it fails; within the migrations Job's deadline (MIGRATIONS_DEADLINE_SECONDS). */
const MIGRATION_LOCK_RETRY_MS = 10 * 60_000;
/** The pause between tries, which lets the statements queued behind the last try run. */
const MIGRATION_LOCK_PAUSE_MS = 1_000;
/**
 * How often the server looks whether the migration's client is still there while it runs a
 * statement: a migrate killed (kill -9, a pod past its deadline) otherwise leaves its
 * session running, or waiting for a lock, and holding the migration lock, until the
 * statement ends.
 */
const CLIENT_CHECK_INTERVAL = '1s';

/** A session holding a table lock while a migration waited for one: whom the wait was probably behind. */
export interface LockHolder {
  pid: number;
  application: string;
  state: string | null;
  transactionSeconds: number | null;
}

export interface LockWait {
  migration: string;
  /** Tries so far that gave way. */
  tries: number;
  holders: LockHolder[];
  retryInMs: number;
}

export interface MigrationOptions {
  /** TLS to the database (DATABASE_SSL). Default `disable`. */
  ssl?: DatabaseSslMode;
  /** Login roles to create or update with least privilege once the schema is current. Default none. */
  roles?: DatabaseRoles;
  /** Told each time a migration gave way to others' locks and will try again. */
  onLockWait?: (wait: LockWait) => void;
}

/** lock_not_available: the try waited MIGRATION_LOCK_WAIT_MS for a lock. */
const LOCK_NOT_AVAILABLE = '55P03';

/** Other client sessions of this database holding table locks, longest in their transaction first. */
async function tableLockHolders(client: ClosingClient): Promise<LockHolder[]> {
  const { rows } = await client.query<LockHolder>(
    `SELECT a.pid, coalesce(nullif(a.application_name, ''), '(none)') AS application, a.state,
            extract(epoch FROM now() - a.xact_start)::float8 AS "transactionSeconds"
       FROM pg_stat_activity a
      WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
        AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'relation' AND l.granted)
      ORDER BY a.xact_start NULLS LAST LIMIT 5`,
  );
  return rows;
}

export function describeLockHolders(holders: readonly LockHolder[]): string {
  if (holders.length === 0) return 'no session holds a table lock now';
  return holders
    .map((h) => `pid ${h.pid} (${h.application}, ${h.state ?? 'state hidden'}${h.transactionSeconds === null ? '' : `, in its transaction for ${h.transactionSeconds.toFixed(0)} s`})`)
    .join(', ');
}

/**
 * Applies one migration in its own transaction, giving way to other sessions' locks after
 * MIGRATION_LOCK_WAIT_MS and trying again until MIGRATION_LOCK_RETRY_MS have passed.
 */
async function applyMigration(client: ClosingClient, name: string, sql: string, onLockWait: MigrationOptions['onLockWait']): Promise<void> {
  const deadline = Date.now() + MIGRATION_LOCK_RETRY_MS;
  for (let tries = 1; ; tries += 1) {
    await client.query('BEGIN');
    try {
      await client.query(`SET LOCAL lock_timeout = ${MIGRATION_LOCK_WAIT_MS}`);
      await client.query(sql);
      await client.query('INSERT INTO schema_migrations (name) VALUES ($1)', [name]);
      await client.query('COMMIT');
      return;
    } catch (error) {
      await client.query('ROLLBACK');
      if ((error as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw new Error(`migration ${name} failed: ${(error as Error).message}`, { cause: error });
      const holders = await tableLockHolders(client);
      if (Date.now() + MIGRATION_LOCK_PAUSE_MS > deadline) {
        throw new Error(
          `migration ${name} failed: for ${MIGRATION_LOCK_RETRY_MS / 60_000} min every try waited ${MIGRATION_LOCK_WAIT_MS / 1_000} s for a table lock and gave way (${tries} tries); ` +
            `holding table locks now: ${describeLockHolders(holders)}. Nothing of it was applied; see platform db locks`,
          { cause: error },
        );
      }
      onLockWait?.({ migration: name, tries, holders, retryInMs: MIGRATION_LOCK_PAUSE_MS });
      await new Promise((resolve) => setTimeout(resolve, MIGRATION_LOCK_PAUSE_MS));
    }
  }
}

/**
 * Applies every migration not yet recorded in schema_migrations, each in its own
 * transaction, in file-name order, then brings the given login roles up to date. A
 * session advisory lock serialises concurrent starters (api and worker booting together):
 * the second waits, then finds nothing to do. A migration whose DDL waits for another
 * session's lock gives way and tries again (applyMigration), so the running release's
 * statements never queue behind it for long. Returns the names applied by this call.
 */
export async function runMigrations(databaseUrl: string, log?: Logger, options: MigrationOptions = {}): Promise<string[]> {
  const names = await listMigrations();
  const directory = migrationsDirectory();
  const client = new ClosingClient({ connectionString: databaseUrl, application_name: 'platform-migrate', ssl: databaseSsl(options.ssl ?? 'disable') });
  await client.connect();
  const applied: string[] = [];
  try {
    await client.query(`SET client_connection_check_interval = '${CLIENT_CHECK_INTERVAL}'`).catch(() => {
      // PostgreSQL before 14, or a server platform without the check: a killed migrate's session then ends with its statement.
    });
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await client.query(CREATE_LEDGER);
      const done = new Set((await client.query<{ name: string }>('SELECT name FROM schema_migrations')).rows.map((row) => row.name));
      const known = new Set(names);
      const unknown = [...done].filter((name) => !known.has(name)).sort();
      if (unknown.length > 0) log?.warn({ unknown }, describeUnknownMigrations(unknown));
      for (const name of names) {
        if (done.has(name)) continue;
        const sql = await readFile(path.join(directory, name), 'utf8');
        await applyMigration(client, name, sql, options.onLockWait);
        applied.push(name);
        log?.info({ migration: name }, 'migration applied');
      }
      const roles = await ensureDatabaseRoles(client, options.roles ?? {});
      if (roles.length > 0) log?.info({ roles }, 'database roles up to date');
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await client.end();
  }
  if (applied.length === 0) log?.debug({ database: redactUrl(databaseUrl) }, 'migrations: schema up to date');
  return applied;
}

export interface MigrationLedger {
  /** On disk, not applied: what `platform migrate` would apply. */
  pending: string[];
  /**
   * Applied, but not on disk: written by a newer release (this one was rolled back), or by
   * another branch. This release runs on that schema only because migrations only add; its
   * `platform migrate` has nothing to undo them with.
   */
  unknown: string[];
}

/** How the database's migration ledger compares with this release's migrations. */
export async function migrationLedger(db: Pick<Pool, 'query'>): Promise<MigrationLedger> {
  const names = await listMigrations();
  const ledger = await db.query<{ exists: boolean }>("SELECT to_regclass('schema_migrations') IS NOT NULL AS exists");
  if (!ledger.rows[0]?.exists) return { pending: names, unknown: [] };
  const done = (await db.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name')).rows.map((row) => row.name);
  const known = new Set(names);
  const applied = new Set(done);
  return { pending: names.filter((name) => !applied.has(name)), unknown: done.filter((name) => !known.has(name)) };
}

/** Migrations present on disk but not applied to the database. */
export async function pendingMigrations(pool: Pool): Promise<string[]> {
  return (await migrationLedger(pool)).pending;
}

/** What to tell an operator of migrations the database has and this release does not know. */
export function describeUnknownMigrations(unknown: readonly string[]): string {
  return (
    `the database has ${unknown.length} migration(s) this release does not know: ${unknown.join(', ')} ` +
    '(applied by a newer release: this one was rolled back over it). It runs on that schema, since migrations only add; ' +
    'roll forward with the release that has them (runbooks/procedures/deploy-and-rollback.md)'
  );
}
