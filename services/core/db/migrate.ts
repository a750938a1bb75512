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

export interface MigrationOptions {
  /** TLS to the database (DATABASE_SSL). Default `disable`. */
  ssl?: DatabaseSslMode;
  /** Login roles to create or update with least privilege once the schema is current. Default none. */
  roles?: DatabaseRoles;
}

/**
 * Applies every migration not yet recorded in schema_migrations, each in its own
 * transaction, in file-name order, then brings the given login roles up to date. A
 * session advisory lock serialises concurrent starters (api and worker booting together):
 * the second waits, then finds nothing to do. Returns the names applied by this call.
 */
export async function runMigrations(databaseUrl: string, log?: Logger, options: MigrationOptions = {}): Promise<string[]> {
  const names = await listMigrations();
  const directory = migrationsDirectory();
  const client = new ClosingClient({ connectionString: databaseUrl, application_name: 'platform-migrate', ssl: databaseSsl(options.ssl ?? 'disable') });
  await client.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await client.query(CREATE_LEDGER);
      const done = new Set((await client.query<{ name: string }>('SELECT name FROM schema_migrations')).rows.map((row) => row.name));
      for (const name of names) {
        if (done.has(name)) continue;
        const sql = await readFile(path.join(directory, name), 'utf8');
        await client.query('BEGIN');
        try {
          await client.query(sql);
          await client.query('INSERT INTO schema_migrations (name) VALUES ($1)', [name]);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK');
          throw new Error(`migration ${name} failed: ${(error as Error).message}`, { cause: error });
        }
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

/** Migrations present on disk but not applied to the database (for `platform doctor`). */
export async function pendingMigrations(pool: Pool): Promise<string[]> {
  const names = await listMigrations();
  const ledger = await pool.query<{ exists: boolean }>("SELECT to_regclass('schema_migrations') IS NOT NULL AS exists");
  if (!ledger.rows[0]?.exists) return names;
  const done = new Set((await pool.query<{ name: string }>('SELECT name FROM schema_migrations')).rows.map((row) => row.name));
  return names.filter((name) => !done.has(name));
}
