/**
 * How the services reach PostgreSQL in the cloud, against a private server that does what
 * RDS does: TLS with a certificate from a CA the client must trust, SCRAM passwords, and
 * no plain TCP for the platform's roles. DATABASE_SSL=verify-full checks the chain and the
 * host name; the migrations honour it too; `platform migrate` creates the app and scaler
 * roles with exactly the privileges they need, and their passwords log in.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Client } from 'pg';
import { backlogQuery } from '../../services/contract';
import { runMigrations } from '../../services/core/db/migrate';
import { createBatchPool, createGeneralPool } from '../../services/core/db/pool';
import { scramVerifier } from '../../services/core/db/roles';
import { databaseSsl } from '../../services/core/db/tls';
import { isRoot, lookupSystemUser } from '../../services/local/child';
import { startPostgres, type PostgresServer } from '../harness/postgres';
import { TEST_TMP_ROOT } from '../harness/temp-dirs';

/** A CA and a server certificate for `localhost` only, made with openssl. */
async function makeCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=platform-kit test CA');
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  await writeFile(file('san.ext'), 'subjectAltName=DNS:localhost\n');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'san.ext');
  return { ca: file('ca.crt'), cert: file('server.crt'), key: file('server.key') };
}

const APP = { user: 'platform_app_test', password: 'app-password-0123456789abcdef' };
const SCALER = { user: 'platform_scaler_test', password: 'scaler-password-0123456789abcd' };

describe('database access as deployed', () => {
  let dir: string;
  let server: PostgresServer;
  let ca: string;
  let databaseUrl: string;
  /** The same database addressed by the certificate's name. */
  let byName: (user?: { user: string; password: string }) => string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(TEST_TMP_ROOT, 'pk-test-pg-tls-'));
    const files = await makeCertificates(dir);
    ca = await readFile(files.ca, 'utf8');
    // The server refuses a key others can read; run as root, it runs as the postgres user.
    const owner = isRoot() ? lookupSystemUser('postgres') : undefined;
    if (owner) for (const f of [dir, files.cert, files.key]) await chown(f, owner.uid, owner.gid);
    server = await startPostgres({ settings: { ssl: 'on', ssl_cert_file: files.cert, ssl_key_file: files.key, password_encryption: 'scram-sha-256' } });
    // As on RDS with rds.force_ssl: the platform's roles log in with SCRAM over TLS only; the superuser keeps trust for the test's own setup.
    await writeFile(path.join(server.dataDir, 'pg_hba.conf'), ['host all postgres 127.0.0.1/32 trust', 'hostssl all all 127.0.0.1/32 scram-sha-256', 'host all all 127.0.0.1/32 reject', ''].join('\n'));
    if (owner) await chown(path.join(server.dataDir, 'pg_hba.conf'), owner.uid, owner.gid);
    const admin = new Client({ connectionString: server.url });
    await admin.connect();
    await admin.query('SELECT pg_reload_conf()');
    await admin.end();
    databaseUrl = await server.createDatabase();
    const db = new URL(databaseUrl).pathname;
    byName = (login) => `postgres://${login ? `${login.user}:${login.password}` : 'postgres'}@localhost:${server.port}${db}`;
  });

  afterAll(async () => {
    await server?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function query<T extends Record<string, unknown>>(url: string, ssl: ReturnType<typeof databaseSsl>, sql: string): Promise<T[]> {
    const client = new Client({ connectionString: url, ssl, connectionTimeoutMillis: 5_000 });
    await client.connect();
    try {
      return (await client.query<T>(sql)).rows;
    } finally {
      await client.end();
    }
  }

  describe('DATABASE_SSL', () => {
    it('verify-full trusts AWS\'s RDS roots (the instance\'s rds-ca-rsa2048-g1 among them) besides the public ones', () => {
      const roots = (databaseSsl('verify-full') as { ca: string[] }).ca;
      expect(roots.length).toBeGreaterThan(rootCertificates.length);
      const subjects = roots.slice(rootCertificates.length).map((pem) => new X509Certificate(pem).subject);
      expect(subjects).toContainEqual(expect.stringContaining('CN=Amazon RDS eu-west-1 Root CA RSA2048 G1'));
      expect(databaseSsl('disable')).toBe(false);
      expect(databaseSsl('require')).toEqual({ rejectUnauthorized: false });
    });

    it.each([
      ['general', createGeneralPool],
      ['batch', createBatchPool],
    ])('verify-full refuses a server whose certificate chains to no trusted root (the %s pool)', async (_name, createPool) => {
      const pool = createPool({ DATABASE_URL: byName(), DATABASE_POOL_MAX: 1, DATABASE_SSL: 'verify-full' });
      try {
        await expect(pool.query('SELECT 1')).rejects.toThrow(/self[- ]signed|unable to (get|verify)/i);
      } finally {
        await pool.end();
      }
    });

    it('verify-full refuses a trusted certificate that names another host', async () => {
      await expect(query(databaseUrl, databaseSsl('verify-full', { ca }), 'SELECT 1')).rejects.toThrow(/altnames|does not match|Hostname\/IP/i);
    });

    it('verify-full connects over TLS to a server whose certificate chains to a trusted root and names the host', async () => {
      const [row] = await query<{ ssl: boolean }>(byName(), databaseSsl('verify-full', { ca }), 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      expect(row?.ssl).toBe(true);
    });

    it('disable stays in plain text and require encrypts without checking', async () => {
      expect((await query<{ ssl: boolean }>(databaseUrl, databaseSsl('disable'), 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'))[0]?.ssl).toBe(false);
      expect((await query<{ ssl: boolean }>(databaseUrl, databaseSsl('require'), 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'))[0]?.ssl).toBe(true);
    });

    it('applies to the migrations too', async () => {
      await expect(runMigrations(byName(), undefined, { ssl: 'verify-full' })).rejects.toThrow(/self[- ]signed|unable to (get|verify)/i);
    });
  });

  describe('platform migrate and the login roles', () => {
    beforeAll(async () => {
      await runMigrations(databaseUrl, undefined, { ssl: 'require', roles: { app: APP, scaler: SCALER } });
    });

    const tls = () => databaseSsl('verify-full', { ca });

    it('lets the app role log in with its password over TLS only', async () => {
      const [row] = await query<{ user: string }>(byName(APP), tls(), 'SELECT current_user AS user');
      expect(row?.user).toBe(APP.user);
      await expect(query(byName({ ...APP, password: 'not-the-password-123' }), tls(), 'SELECT 1')).rejects.toThrow(/password authentication failed/);
      await expect(query(byName(APP), databaseSsl('disable'), 'SELECT 1')).rejects.toThrow(/pg_hba\.conf rejects|no encryption/);
    });

    it('gives the app rows of the platform\'s tables and nothing else', async () => {
      const rows = await query<Record<string, boolean>>(
        databaseUrl,
        databaseSsl('require'),
        `SELECT has_table_privilege('${APP.user}', 'jobs', 'SELECT, INSERT, UPDATE, DELETE') AS jobs,
                has_table_privilege('${APP.user}', 'users', 'SELECT, INSERT, UPDATE, DELETE') AS users,
                has_table_privilege('${APP.user}', 'job_events', 'INSERT') AS events,
                has_sequence_privilege('${APP.user}', 'job_events_id_seq', 'USAGE') AS sequence,
                has_table_privilege('${APP.user}', 'schema_migrations', 'SELECT') AS ledger_read,
                has_table_privilege('${APP.user}', 'schema_migrations', 'INSERT') AS ledger_write,
                has_table_privilege('${APP.user}', 'jobs', 'TRUNCATE') AS truncate,
                has_schema_privilege('${APP.user}', 'public', 'CREATE') AS create_in_schema,
                (SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = '${APP.user}') AS powers`,
      );
      expect(rows[0]).toEqual({ jobs: true, users: true, events: true, sequence: true, ledger_read: true, ledger_write: false, truncate: false, create_in_schema: false, powers: false });
      await expect(query(byName(APP), tls(), 'CREATE TABLE intruder (id int)')).rejects.toThrow(/permission denied/);
      await expect(query(byName(APP), tls(), "INSERT INTO schema_migrations (name) VALUES ('9999_fake.sql')")).rejects.toThrow(/permission denied/);
    });

    it('lets the scaler count the backlog and read nothing a user submitted', async () => {
      const [row] = await query<{ count: string }>(byName(SCALER), tls(), backlogQuery(50));
      expect(Number(row?.count)).toBe(0);
      await expect(query(byName(SCALER), tls(), 'SELECT result FROM jobs')).rejects.toThrow(/permission denied/);
      await expect(query(byName(SCALER), tls(), 'SELECT idempotency_key FROM jobs')).rejects.toThrow(/permission denied/);
      await expect(query(byName(SCALER), tls(), 'SELECT input FROM jobs')).rejects.toThrow(/permission denied/);
      await expect(query(byName(SCALER), tls(), 'SELECT * FROM users')).rejects.toThrow(/permission denied/);
      await expect(query(byName(SCALER), tls(), "INSERT INTO jobs (id, owner_id, type, input, status, max_attempts) VALUES (gen_random_uuid(), gen_random_uuid(), 'echo', '{}', 'queued', 1)")).rejects.toThrow(/permission denied/);
    });

    it('is idempotent and takes the new password on the next run (rotation), never the old one', async () => {
      const rotated = { ...APP, password: 'rotated-password-0123456789abcd' };
      await runMigrations(databaseUrl, undefined, { ssl: 'require', roles: { app: rotated, scaler: SCALER } });
      await runMigrations(databaseUrl, undefined, { ssl: 'require', roles: { app: rotated, scaler: SCALER } });
      expect((await query<{ user: string }>(byName(rotated), tls(), 'SELECT current_user AS user'))[0]?.user).toBe(APP.user);
      await expect(query(byName(APP), tls(), 'SELECT 1')).rejects.toThrow(/password authentication failed/);
    });

    it('stores a SCRAM verifier, never the password, and the statement it sends holds no plaintext', async () => {
      const [row] = await query<{ hash: string }>(databaseUrl, databaseSsl('require'), `SELECT rolpassword AS hash FROM pg_authid WHERE rolname = '${SCALER.user}'`);
      expect(row?.hash).toMatch(/^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
      expect(row?.hash).not.toContain(SCALER.password);
      expect(scramVerifier(SCALER.password)).not.toContain(SCALER.password);
    });
  });
});
