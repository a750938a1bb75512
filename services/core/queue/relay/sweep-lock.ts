import type { Pool } from 'pg';

/** Arbitrary but fixed: one sweeper at a time across every api and worker process. */
export const SWEEP_LOCK_KEY = 7_203_114_521;

/**
 * Runs `sweep` while this process holds the sweep lock (a session-level advisory lock);
 * undefined, without running it, when another process holds it.
 *
 * The lock belongs to the session. A lock or unlock PostgreSQL did not answer (a stalled
 * server, past the pool's query_timeout) still takes or keeps it once the server resumes:
 * such a session is closed, which ends its locks, rather than pooled, where it would hold
 * the lock for as long as the pool keeps it and no other process could sweep.
 */
export async function underSweepLock<T>(pool: Pool, sweep: () => Promise<T>): Promise<T | undefined> {
  const client = await pool.connect();
  let unsound = false;
  const onLockSession = <R>(statement: Promise<R>): Promise<R> =>
    statement.catch((error: unknown) => {
      unsound = true;
      throw error;
    });
  try {
    const locked = await onLockSession(client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [SWEEP_LOCK_KEY]));
    if (!locked.rows[0]?.locked) return undefined;
    try {
      return await sweep();
    } finally {
      await onLockSession(client.query('SELECT pg_advisory_unlock($1)', [SWEEP_LOCK_KEY]));
    }
  } finally {
    // release(true) closes the connection rather than pooling it.
    client.release(unsound);
  }
}
