import type { Pool, PoolClient } from 'pg';
import { withTimeout } from '../timeout';
import { DatabaseDeadlineError, isDatabaseUnavailable } from './errors';

async function transaction<T>(client: PoolClient, work: (client: PoolClient) => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  const result = await work(client);
  await client.query('COMMIT');
  return result;
}

/**
 * Runs `work` in a transaction on one pooled connection: COMMIT when it returns, ROLLBACK
 * when it throws (the error goes on to the caller). Work that rolled back itself (a lost
 * race) is followed by a COMMIT that does nothing.
 */
export async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    return await transaction(client, work);
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/**
 * Runs `work` in a transaction that commits only if PostgreSQL gets through it within
 * `withinMs`. Past that the caller gets DatabaseDeadlineError at once, and the connection
 * is dropped instead of waited on: a server that stopped answering (stopped, partitioned,
 * hung) and later resumes finds the session gone and rolls back whatever of the work it
 * had not yet committed, so nothing the caller was told failed is written afterwards. A
 * single autocommitted statement has no such point of no return: it would commit whenever
 * the server got to it. Only a COMMIT that was sent but not yet answered when the time ran
 * out leaves the outcome open.
 */
export async function commitWithin<T>(pool: Pool, withinMs: number, work: (client: PoolClient) => Promise<T>): Promise<T> {
  if (!(withinMs > 0)) throw new DatabaseDeadlineError();
  const deadline = Date.now() + withinMs;
  const late = () => new DatabaseDeadlineError();
  const connecting = pool.connect();
  let client: PoolClient;
  try {
    client = await withTimeout(connecting, withinMs, late);
  } catch (error) {
    // A connection that arrives after the deadline goes back unused.
    connecting.then((arrived) => arrived.release(), () => undefined);
    throw error;
  }
  try {
    const result = await withTimeout(transaction(client, work), deadline - Date.now(), late);
    client.release();
    return result;
  } catch (error) {
    if (isDatabaseUnavailable(error)) {
      // Unanswered or broken: end the session rather than wait on it (a release with an error closes the connection).
      client.release(error as Error);
    } else {
      // PostgreSQL answered with an error (a row at fault): the session is sound once the transaction is gone.
      await client.query('ROLLBACK').then(
        () => client.release(),
        (rollbackError: unknown) => client.release(rollbackError as Error),
      );
    }
    throw error;
  }
}
