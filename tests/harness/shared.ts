import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { runMigrations } from '../../services/core/db/migrate';

/** Environment variables through which globalSetup hands the shared servers to the test workers. */
export const SHARED_ENV = {
  postgresUrl: 'PK_TEST_PG_URL',
  redisUrl: 'PK_TEST_REDIS_URL',
} as const;

export interface SharedServices {
  /** A database created for this call on the run's shared PostgreSQL, with every migration applied. */
  databaseUrl: string;
  /** The run's shared Redis. */
  redisUrl: string;
  /** A key prefix no other caller uses, hash-tagged (`{t-<uuid>}`) like the platform's QUEUE_PREFIX. */
  redisPrefix: string;
}

function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the tests through jest, whose globalSetup (tests/harness/global-setup.ts) starts the shared servers`);
  }
  return value;
}

/**
 * Isolated slices of the run's shared PostgreSQL and Redis: a fresh database and a
 * fresh key prefix per call, so test files never see each other's rows or queues and
 * no file pays for starting servers.
 */
export async function useSharedServices(): Promise<SharedServices> {
  const serverUrl = requiredEnv(SHARED_ENV.postgresUrl);
  const redisUrl = requiredEnv(SHARED_ENV.redisUrl);
  const name = `test_${randomUUID().replaceAll('-', '')}`;
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
  const databaseUrl = new URL(serverUrl);
  databaseUrl.pathname = `/${name}`;
  await runMigrations(databaseUrl.toString());
  return { databaseUrl: databaseUrl.toString(), redisUrl, redisPrefix: `{t-${randomUUID()}}` };
}
