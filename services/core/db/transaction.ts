import type { Pool, PoolClient } from 'pg';
import { withTimeout } from '../timeout';
import { DatabaseDeadlineError, isDatabaseUnavailable } from './errors';

export interface TransactionOptions<T> {
  /**
   * Whether what the work answered is kept: false rolls the transaction back and still
   * answers it (a lost race that leaves nothing behind). Everything is kept by default.
   */
  commitIf?: (result: T) => boolean;
}

async function transaction<T>(client: PoolClient, work: (client: PoolClient) => Promise<T>, options: TransactionOptions<T> = {}): Promise<T> {
  await client.query('BEGIN');
  const result = await work(client);
  await client.query(options.commitIf && !options.commitIf(result) ? 'ROLLBACK' : 'COMMIT');
  return result;
}

/**
 * Runs `work` in a transaction on one pooled connection: COMMIT when it returns (ROLLBACK
 * when `commitIf` says its answer is not to be kept), ROLLBACK when it throws (the error
 * goes on to the caller).
 *
 * A session PostgreSQL stopped answering (a statement past the client's query_timeout on a
 * stalled server, a lost connection) is closed instead: the server may still run what it
 * was sent once it resumes, inside the transaction and holding its locks, and the next
 * caller handed that session would run in the same transaction, its COMMIT writing what
 * this caller was told failed. A closed session is rolled back by the server. So is one
 * whose ROLLBACK failed.
 */
export async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>, options: TransactionOptions<T> = {}): Promise<T> {
  const client = await pool.connect();
  let unsound = false;
  try {
    return await transaction(client, work, options);
  } catch (error) {
    if (isDatabaseUnavailable(error)) unsound = true;
    else await client.query('ROLLBACK').catch(() => (unsound = true));
    throw error;
  } finally {
    // release(true) closes the connection rather than pooling it.
    client.release(unsound);
  }
}

/**
 * Runs `work` on one pooled connection and waits for it at most `withinMs`. Past that the
 * caller gets DatabaseDeadlineError at once, and the connection is dropped instead of
 * waited on (a release with an error closes it). When PostgreSQL answers with an error,
 * `settle` makes the session sound again before it goes back to the pool.
 */
async function onConnectionWithin<T>(pool: Pool, withinMs: number, work: (client: PoolClient) => Promise<T>, settle: (client: PoolClient) => Promise<void>): Promise<T> {
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
    const result = await withTimeout(work(client), deadline - Date.now(), late);
    client.release();
    return result;
  } catch (error) {
    if (isDatabaseUnavailable(error)) client.release(error as Error);
    else
      await settle(client).then(
        () => client.release(),
        (settleError: unknown) => client.release(settleError as Error),
      );
    throw error;
  }
}

/**
 * Runs one statement (`work`) and waits for its answer at most `withinMs`, as
 * onConnectionWithin does. The statement itself must refuse to run once its caller has
 * stopped waiting (require_started_before, migration 0005): a statement on its own commits
 * whenever the server gets to it, so a server that resumes after the caller gave up would
 * otherwise write what the caller was told failed.
 */
export function answerWithin<T>(pool: Pool, withinMs: number, work: (client: PoolClient) => Promise<T>): Promise<T> {
  return onConnectionWithin(pool, withinMs, work, async () => undefined);
}

/**
 * Runs `work` in a transaction that commits only if PostgreSQL gets through it within
 * `withinMs`. Past that the caller gets DatabaseDeadlineError at once and the connection is
 * dropped: a server that stopped answering (stopped, partitioned, hung) and later resumes
 * finds the session gone and rolls back whatever of the work it had not yet committed, so
 * nothing the caller was told failed is written afterwards. Only a COMMIT that was sent but
 * not yet answered when the time ran out leaves the outcome open. Work PostgreSQL refused
 * is rolled back and its error handed on; the session is kept.
 */
export function commitWithin<T>(pool: Pool, withinMs: number, work: (client: PoolClient) => Promise<T>): Promise<T> {
  return onConnectionWithin(pool, withinMs, (client) => transaction(client, work), async (client) => {
    await client.query('ROLLBACK');
  });
}
