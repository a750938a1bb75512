import { MigrateEnvSchema, parseEnv, type MigrateEnv } from '../../contract';
import { createGeneralPool } from '../../core/db/pool';
import { describeLockHolders, listMigrations, pendingMigrations, runMigrations, type LockWait } from '../../core/db/migrate';
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

/** Migrations need only the database (MigrateEnvSchema): a migration Job in Kubernetes gets no Redis or bucket settings. */
export async function migrate(options: { status?: boolean; json?: boolean }): Promise<number> {
  const env = parseEnv(process.env, MigrateEnvSchema);
  if (!options.status) {
    const roles = rolesOf(env);
    const applied = await runMigrations(env.DATABASE_URL, undefined, { ssl: env.DATABASE_SSL, roles, onLockWait: reportLockWait });
    const roleNames = Object.values(roles).map((role) => role.user);
    if (options.json) printJson({ applied, roles: roleNames });
    else {
      process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'up to date: no pending migrations\n');
      if (roleNames.length > 0) process.stdout.write(`roles up to date: ${roleNames.join(', ')}\n`);
    }
    return 0;
  }
  const pool = createGeneralPool({ ...env, DATABASE_POOL_MAX: 1 }, undefined, 'pk-cli');
  try {
    const [all, pending] = await Promise.all([listMigrations(), pendingMigrations(pool)]);
    const rows = all.map((name) => ({ migration: name, state: pending.includes(name) ? 'pending' : 'applied' }));
    if (options.json) printJson({ migrations: rows, pending });
    else printTable(rows, ['migration', 'state']);
    return pending.length === 0 ? 0 : 1;
  } finally {
    await pool.end();
  }
}
