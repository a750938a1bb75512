import { MigrateEnvSchema, parseEnv, type MigrateEnv } from '../../contract';
import { createGeneralPool } from '../../core/db/pool';
import { describeLockHolders, describeUnknownMigrations, listMigrations, migrationLedger, runMigrations, type LockWait, type MigrationLedger } from '../../core/db/migrate';
import type { DatabaseRoles } from '../../core/db/roles';
import { printJson, printTable } from '../output';

function rolesOf(env: MigrateEnv): DatabaseRoles {
  return {
    ...(env.DATABASE_APP_USER && env.DATABASE_APP_PASSWORD ? { app: { user: env.DATABASE_APP_USER, password: env.DATABASE_APP_PASSWORD } } : {}),
    ...(env.DATABASE_SCALER_USER && env.DATABASE_SCALER_PASSWORD ? { scaler: { user: env.DATABASE_SCALER_USER, password: env.DATABASE_SCALER_PASSWORD } } : {}),
  };
}

function reportLockWait(wait: LockWait): void {
  process.stderr.write(
    `migrate: ${wait.migration} waited for a table lock and gave way to the traffic queued behind it (try ${wait.tries}); ` +
      `holding table locks: ${describeLockHolders(wait.holders)}; trying again in ${wait.retryInMs / 1_000} s\n`,
  );
}

async function readLedger(env: MigrateEnv): Promise<MigrationLedger> {
  const pool = createGeneralPool({ ...env, DATABASE_POOL_MAX: 1 }, undefined, 'pk-cli');
  try {
    return await migrationLedger(pool);
  } finally {
    await pool.end();
  }
}

/** Migrations need only the database (MigrateEnvSchema): a migration Job in Kubernetes gets no Redis or bucket settings. */
export async function migrate(options: { status?: boolean; json?: boolean }): Promise<number> {
  const env = parseEnv(process.env, MigrateEnvSchema);
  if (!options.status) {
    const roles = rolesOf(env);
    const applied = await runMigrations(env.DATABASE_URL, undefined, { ssl: env.DATABASE_SSL, roles, onLockWait: reportLockWait });
    const { unknown } = await readLedger(env);
    const roleNames = Object.values(roles).map((role) => role.user);
    if (options.json) printJson({ applied, roles: roleNames, unknown });
    else {
      process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'up to date: no pending migrations\n');
      if (roleNames.length > 0) process.stdout.write(`roles up to date: ${roleNames.join(', ')}\n`);
      if (unknown.length > 0) process.stdout.write(`note: ${describeUnknownMigrations(unknown)}\n`);
    }
    return 0;
  }
  const [all, { pending, unknown }] = await Promise.all([listMigrations(), readLedger(env)]);
  const rows = [
    ...all.map((name) => ({ migration: name, state: pending.includes(name) ? 'pending' : 'applied' })),
    ...unknown.map((name) => ({ migration: name, state: 'applied, unknown to this release' })),
  ].sort((a, b) => a.migration.localeCompare(b.migration));
  if (options.json) printJson({ migrations: rows, pending, unknown });
  else {
    printTable(rows, ['migration', 'state']);
    if (unknown.length > 0) process.stdout.write(`\nnote: ${describeUnknownMigrations(unknown)}\n`);
  }
  return pending.length === 0 ? 0 : 1;
}
