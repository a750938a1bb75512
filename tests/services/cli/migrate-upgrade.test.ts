/**
 * `platform migrate` as a release walks it: migrations run while the previous release's api
 * and workers keep using the database, and an older release runs on the newer schema after
 * a rollback.
 *
 * - A migration's DDL waiting behind a long transaction queued every later statement on its
 *   table behind it: with an `idle in transaction` session holding jobs, a plain
 *   `SELECT count(*) FROM jobs` waited as long as that session lasted, and so would every
 *   submit and state write. A migrate killed meanwhile (kill -9, a Job past its deadline)
 *   left its session waiting, still holding the migration lock and its place in the queue.
 * - After a rollback, the older release's `platform migrate`, `--status` and `doctor` said
 *   "up to date" without a word of the migrations the newer release had applied.
 * - Before a deploy's migrations, the new release's doctor failed its relay check with a bare
 *   `column "lock_lapses" does not exist`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { Client } from 'pg';
import { listMigrations } from '../../../services/core/db/migrate';
import { nodeArgsFor } from '../../harness/compiled-children';
import { useSharedServices } from '../../harness/shared';
import { createEngineFixture, waitFor, type EngineFixture } from '../engine/fixture';
import { cliEnvFor, platform } from './platform-cli';

const ROOT = path.resolve(__dirname, '../../..');
/** Only a bound, so that a statement queued behind the migration fails the test instead of hanging it. */
const TRAFFIC_STATEMENT_TIMEOUT_MS = 20_000;

type Status = { pending: string[]; unknown?: string[]; migrations: { migration: string; state: string }[] };
type Doctor = { checks: { check: string; verdict: string; detail: string }[] };

async function connect(databaseUrl: string, application: string, options: { statementTimeoutMs?: number } = {}): Promise<Client> {
  const client = new Client({ connectionString: databaseUrl, application_name: application, statement_timeout: options.statementTimeoutMs });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** The last migration, as the database was before this release's deploy: not applied, its columns not there. */
async function undoLastMigration(databaseUrl: string): Promise<string> {
  const last = (await listMigrations()).at(-1) as string;
  expect(last).toBe('0011_job_lock_lapses.sql');
  const admin = await connect(databaseUrl, 'test-setup');
  try {
    await admin.query('ALTER TABLE jobs DROP COLUMN lock_lapses, DROP COLUMN lock_lapses_entry');
    await admin.query('DELETE FROM schema_migrations WHERE name = $1', [last]);
  } finally {
    await admin.end();
  }
  return last;
}

/** A session in a transaction that has read jobs: it holds a lock that the migration's ALTER TABLE waits for. */
async function longTransaction(databaseUrl: string): Promise<Client> {
  const holder = await connect(databaseUrl, 'long-report');
  await holder.query('BEGIN');
  await holder.query('SELECT count(*) FROM jobs');
  return holder;
}

function startMigrate(databaseUrl: string): { child: ChildProcess; exited: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, [...nodeArgsFor(path.join(ROOT, 'services/cli/index.ts')), 'migrate'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: databaseUrl },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return { child, exited, stderr: () => stderr };
}

/** Until the migration's session waits for a table lock: the moment later statements would queue behind it. */
async function migrationWaitsForLock(observer: Client): Promise<void> {
  await waitFor('the migration to wait for a table lock', async () => {
    const { rows } = await observer.query("SELECT 1 FROM pg_stat_activity WHERE application_name = 'platform-migrate' AND wait_event_type = 'Lock' AND query NOT LIKE '%pg_advisory_lock%'");
    return rows.length > 0;
  });
}

describe('platform migrate during a rolling deploy and after a rollback', () => {
  let fixture: EngineFixture;
  let cliEnv: Record<string, string>;
  const clients: Client[] = [];
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    fixture = await createEngineFixture();
    cliEnv = cliEnvFor(fixture.env);
  });
  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
    await fixture?.close();
  });

  /**
   * A database before this release's last migration, a long transaction holding a lock on
   * jobs, and this release's migrate started and waiting for that lock; with a session to
   * watch it and one that sends what the running release sends.
   */
  async function migrateBehindLongTransaction() {
    const { databaseUrl } = await useSharedServices();
    const last = await undoLastMigration(databaseUrl);
    const holder = await longTransaction(databaseUrl);
    clients.push(holder);
    const observer = await connect(databaseUrl, 'observer');
    const traffic = await connect(databaseUrl, 'api-like', { statementTimeoutMs: TRAFFIC_STATEMENT_TIMEOUT_MS });
    clients.push(observer, traffic);
    const migrate = startMigrate(databaseUrl);
    children.push(migrate.child);
    await migrationWaitsForLock(observer);
    return { databaseUrl, last, holder, observer, traffic, migrate };
  }

  it('lets the statements of the running release through while its DDL waits behind a long transaction, names that transaction, and applies once it ends', async () => {
    const { databaseUrl, last, holder, traffic, migrate } = await migrateBehindLongTransaction();
    // What every submit and state write of the running release does to jobs.
    await expect(traffic.query('SELECT count(*) FROM jobs')).resolves.toBeDefined();
    await waitFor('the migration to say what it waits for', async () => migrate.stderr().includes('long-report'));
    expect(migrate.stderr()).toContain(`${last} waited for a table lock`);

    await holder.query('COMMIT');
    expect(await migrate.exited).toBe(0);
    const status = JSON.parse((await platform(['migrate', '--status', '--json'], { DATABASE_URL: databaseUrl })).stdout) as Status;
    expect(status.pending).toEqual([]);
  });

  it('a migrate killed while it waits leaves no session behind holding the migration lock or queueing the traffic; the next one applies', async () => {
    const { databaseUrl, last, holder, observer, traffic, migrate: killed } = await migrateBehindLongTransaction();
    killed.child.kill('SIGKILL');
    await killed.exited;
    await waitFor('the killed migration\'s session to end', async () => {
      const { rows } = await observer.query("SELECT 1 FROM pg_stat_activity WHERE application_name = 'platform-migrate'");
      return rows.length === 0;
    });
    await expect(traffic.query('SELECT count(*) FROM jobs')).resolves.toBeDefined();

    await holder.query('COMMIT');
    const rerun = await platform(['migrate'], { DATABASE_URL: databaseUrl });
    expect({ code: rerun.code, stdout: rerun.stdout }).toEqual({ code: 0, stdout: `applied: ${last}\n` });
  });

  it('the new release\'s doctor, before its migrations, says its relay check could not run on the older schema', async () => {
    const { databaseUrl } = await useSharedServices();
    const last = await undoLastMigration(databaseUrl);
    const run = await platform(['doctor', '--json'], { ...cliEnv, DATABASE_URL: databaseUrl });
    const checks = (JSON.parse(run.stdout) as Doctor).checks;
    expect(checks.find((check) => check.check === 'migrations')).toEqual({ check: 'migrations', verdict: 'fail', detail: `pending: ${last}; run: platform migrate` });
    expect(checks.find((check) => check.check === 'relay')?.detail).toMatch(/^not checked: the schema lacks what this release reads \(pending migrations, above\)/);
  });

  it('says which applied migrations this release does not know (rolled back after a newer release), and changes nothing', async () => {
    const newer = '9999_from_a_newer_release.sql';
    await fixture.query('INSERT INTO schema_migrations (name) VALUES ($1)', [newer]);
    try {
      const apply = await platform(['migrate'], { DATABASE_URL: cliEnv.DATABASE_URL as string });
      expect(apply.code).toBe(0);
      expect(apply.stdout).toContain('up to date: no pending migrations');
      expect(apply.stdout).toContain(`this release does not know: ${newer}`);

      const status = await platform(['migrate', '--status', '--json'], { DATABASE_URL: cliEnv.DATABASE_URL as string });
      expect(status.code).toBe(0);
      const parsed = JSON.parse(status.stdout) as Status;
      expect({ pending: parsed.pending, unknown: parsed.unknown }).toEqual({ pending: [], unknown: [newer] });
      expect(parsed.migrations.at(-1)).toEqual({ migration: newer, state: 'applied, unknown to this release' });
      expect((await platform(['migrate', '--status'], { DATABASE_URL: cliEnv.DATABASE_URL as string })).stdout).toContain(`this release does not know: ${newer}`);

      const doctor = JSON.parse((await platform(['doctor', '--json'], cliEnv)).stdout) as Doctor;
      expect(doctor.checks.find((check) => check.check === 'migrations')).toEqual({ check: 'migrations', verdict: 'warn', detail: expect.stringContaining(`this release does not know: ${newer}`) });
      expect(await fixture.query('SELECT name FROM schema_migrations WHERE name = $1', [newer])).toEqual([{ name: newer }]);
    } finally {
      await fixture.query('DELETE FROM schema_migrations WHERE name = $1', [newer]);
    }
  });
});
