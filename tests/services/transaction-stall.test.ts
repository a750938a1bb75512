/**
 * inTransaction when PostgreSQL stops answering under it (a stalled host, SIGSTOP): the
 * statement the client gave up on still runs on the server once it resumes, inside the
 * transaction, with its locks. The session must not go back to the pool: the next caller
 * would run inside that transaction, and its COMMIT would write what the first caller was
 * told failed (and until then the first one's locks stay held: found under load with
 * npm start, an owner's row lock held 15 s after a stall, its submits waiting on it).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { Client, Pool } from 'pg';
import { inTransaction } from '../../services/core/db/transaction';
import { startPostgres, type PostgresServer } from '../harness/postgres';

let postgres: PostgresServer;
let databaseUrl: string;

beforeAll(async () => {
  postgres = await startPostgres();
  databaseUrl = await postgres.createDatabase();
  const setup = new Client({ connectionString: databaseUrl });
  await setup.connect();
  await setup.query('CREATE TABLE marks (id int PRIMARY KEY)');
  await setup.end();
}, 60_000);

afterAll(async () => {
  await postgres?.destroy();
});

describe('inTransaction over a server that stalls', () => {
  it('drops the session whose statement timed out on the client: what that caller was told failed is never committed by the next', async () => {
    // One connection, as a busy pool's next caller would get this very session; a client-side wait of 1 s.
    const pool = new Pool({ connectionString: databaseUrl, max: 1, idleTimeoutMillis: 0, query_timeout: 1_000 });
    try {
      const first = inTransaction(pool, async (client) => {
        await client.query('INSERT INTO marks VALUES (1)');
        postgres.pause();
        await client.query('SELECT 1');
      });
      await expect(first).rejects.toThrow('Query read timeout');
      // Still stalled past the wait for a ROLLBACK (1 s more): then it resumes and answers what it was sent.
      await delay(1_500);
      postgres.resume();
      await delay(500);

      await inTransaction(pool, (client) => client.query('INSERT INTO marks VALUES (2)'));
      expect((await pool.query<{ id: number }>('SELECT id FROM marks ORDER BY id')).rows.map((row) => row.id)).toEqual([2]);
    } finally {
      postgres.resume();
      await pool.end();
    }
  }, 30_000);
});
