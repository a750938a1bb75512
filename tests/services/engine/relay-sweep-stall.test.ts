/**
 * The relay's sweep lock is a session-level advisory lock. When PostgreSQL stops answering
 * (a stalled host, SIGSTOP) while a sweep asks for it, the client gives up but the server
 * still runs the statement once it resumes and takes the lock for that session. Pooled
 * again, the session would keep the lock for as long as the pool keeps it (a busy pool
 * never lets it idle out), and every other process's sweep would find the lock taken: Redis
 * losing its queue after that would leave the jobs it held queued until a restart.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, Pool } from 'pg';
import { createLogger } from '../../../services/core/logger';
import { createRedisConnection } from '../../../services/core/queue/connection';
import { Relay, SWEEP_LOCK_KEY } from '../../../services/core/queue/relay';
import { startPostgres, type PostgresServer } from '../../harness/postgres';
import { useSharedServices } from '../../harness/shared';

let postgres: PostgresServer;

beforeAll(async () => {
  postgres = await startPostgres();
}, 60_000);

afterAll(async () => {
  await postgres?.destroy();
});

describe('relay sweep over a server that stalls', () => {
  it('a sweep whose lock statement timed out on the client leaves no session holding the sweep lock', async () => {
    const databaseUrl = await postgres.createDatabase();
    const { redisUrl } = await useSharedServices();
    // One connection with a client-side wait of 1 s: the sweep takes the session warmed here.
    const pool = new Pool({ connectionString: databaseUrl, max: 1, idleTimeoutMillis: 0, query_timeout: 1_000 });
    const connection = createRedisConnection(redisUrl, 'producer');
    const relay = new Relay({ connection, generalPool: pool, log: createLogger({ service: 'relay-sweep-stall-test', level: 'silent' }) }, { prefix: `{t-${randomUUID()}}` });
    // Another process's session, connected before the stall.
    const other = new Client({ connectionString: databaseUrl });
    try {
      await Promise.all([pool.query('SELECT 1'), other.connect()]);
      postgres.pause();
      await expect(relay.sweep()).rejects.toThrow('Query read timeout');
      await delay(500);
      postgres.resume();
      await delay(500);

      const { rows } = await other.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [SWEEP_LOCK_KEY]);
      expect(rows[0]?.locked).toBe(true);
    } finally {
      postgres.resume();
      await relay.close();
      connection.disconnect();
      await other.end();
      await pool.end();
    }
  }, 30_000);
});
