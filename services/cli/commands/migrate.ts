import { WorkerEnvSchema, parseEnv } from '../../contract';
import { createGeneralPool } from '../../core/db/pool';
import { listMigrations, pendingMigrations, runMigrations } from '../../core/db/migrate';
import { printJson, printTable } from '../output';

/** Migrations need only the database: a migration Job in Kubernetes gets no Redis or bucket settings. */
const MigrateEnvSchema = WorkerEnvSchema.pick({ DATABASE_URL: true, DATABASE_POOL_MAX: true, DATABASE_SSL: true });

export async function migrate(options: { status?: boolean; json?: boolean }): Promise<number> {
  const env = parseEnv(process.env, MigrateEnvSchema);
  if (!options.status) {
    const applied = await runMigrations(env.DATABASE_URL);
    if (options.json) printJson({ applied });
    else process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'up to date: no pending migrations\n');
    return 0;
  }
  const pool = createGeneralPool(env, undefined, 'pk-cli');
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
