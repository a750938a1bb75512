/**
 * A PostgreSQL restart ends every connection, including one checked out of a pool between
 * two statements. The process must survive that: the next statement fails, and the pool
 * replaces the connection.
 */
import { Client } from 'pg';
import { createGeneralPool, REQUEST_BOUNDS } from '../../services/core/db/pool';
import { useSharedServices } from '../harness/shared';

describe('a pooled connection lost while checked out', () => {
  it('fails its next statement instead of ending the process, and the pool goes on with a new connection', async () => {
    const { databaseUrl } = await useSharedServices();
    const pool = createGeneralPool({ DATABASE_URL: databaseUrl, DATABASE_POOL_MAX: 2, DATABASE_SSL: 'disable' });
    const admin = new Client({ connectionString: databaseUrl });
    await admin.connect();
    try {
      const client = await pool.connect();
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await admin.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid]);
      // The server's FATAL arrives while no statement runs: without a listener, an uncaught 'error' event.
      await new Promise((resolve) => setTimeout(resolve, 200));
      await expect(client.query('SELECT 1')).rejects.toThrow();
      client.release();
      expect((await pool.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await admin.end();
      await pool.end();
    }
  });
});

describe('statement bounds of the general pool', () => {
  it.each([
    ['background work (the default)', undefined, '15s'],
    ["the api's requests", REQUEST_BOUNDS, '4s'],
  ])('sets the server-side statement timeout for %s', async (_name, bounds, expected) => {
    const { databaseUrl } = await useSharedServices();
    const pool = createGeneralPool({ DATABASE_URL: databaseUrl, DATABASE_POOL_MAX: 1, DATABASE_SSL: 'disable' }, undefined, 'pk-test', bounds);
    try {
      expect((await pool.query<{ statement_timeout: string }>('SHOW statement_timeout')).rows).toEqual([{ statement_timeout: expected }]);
    } finally {
      await pool.end();
    }
  });
});
