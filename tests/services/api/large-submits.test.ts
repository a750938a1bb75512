import type { PoolClient } from 'pg';
import { LARGE_SUBMIT_BYTES } from '../../../services/core/jobs/submit';
import { call, signUp, startApi, type ApiFixture, type CallResult } from './fixture';

/** An echo submit whose JSON body is about `bytes` long. */
function echoOf(bytes: number): { type: string; input: { payload: string } } {
  return { type: 'echo', input: { payload: 'x'.repeat(bytes) } };
}

describe('large submits are written apart: one user\'s MiB of JSON does not hold up another user\'s submit', () => {
  let api: ApiFixture;

  beforeAll(async () => {
    api = await startApi();
  });

  afterAll(async () => {
    await api.close();
  });

  /** Holds the user's row as an UPDATE would: every INSERT of that user's jobs waits on it (the owner's foreign key). */
  async function holdUserRow(userId: string): Promise<PoolClient> {
    const client = await api.db.connect();
    await client.query('BEGIN');
    await client.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [userId]);
    return client;
  }

  /** Submit INSERTs of the API waiting for a lock, as PostgreSQL sees them. */
  async function insertsWaitingForALock(): Promise<number> {
    const { rows } = await api.db.query<{ count: number }>(
      "SELECT count(*)::int AS count FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO jobs%'",
    );
    return rows[0]?.count ?? 0;
  }

  async function until(what: string, check: () => Promise<boolean>): Promise<void> {
    for (const started = Date.now(); !(await check()); ) {
      if (Date.now() - started > 10_000) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it('accepts a small submit at once while large ones of another user are being written', async () => {
    const heavy = await signUp(api);
    const light = await signUp(api);
    const held = await holdUserRow(heavy.userId);
    const large: Promise<CallResult>[] = [];
    try {
      // Two large submits, one after the other reaching PostgreSQL: with one batcher for all,
      // they would take both of its statements in flight and the small submit would wait
      // for them (here, until its deadline: 503).
      large.push(call(api, '/v1/jobs', { token: heavy.token, json: echoOf(LARGE_SUBMIT_BYTES + 1_000) }));
      await until('the first large submit to wait for the lock', async () => (await insertsWaitingForALock()) >= 1);
      large.push(call(api, '/v1/jobs', { token: heavy.token, json: echoOf(LARGE_SUBMIT_BYTES * 4) }));
      // Gives the second one time to reach the API and, where it would, PostgreSQL.
      await new Promise((resolve) => setTimeout(resolve, 300));

      const small = await call(api, '/v1/jobs', { token: light.token, json: { type: 'echo', input: { payload: 'hello' } } });
      expect(small.status).toBe(202);
      const stored = await api.db.query<{ owner_id: string }>('SELECT owner_id FROM jobs WHERE id = $1', [small.body.id]);
      expect(stored.rows).toEqual([{ owner_id: light.userId }]);
      // The large ones are still held: the small one did not just come after them.
      expect(await insertsWaitingForALock()).toBe(1);
    } finally {
      await held.query('ROLLBACK');
      held.release();
    }
    const answers = await Promise.all(large);
    expect(answers.map((answer) => answer.status)).toEqual([202, 202]);
  });

  it('stores each input\'s size as compact JSON in bytes, multibyte characters counted as UTF-8', async () => {
    const { token } = await signUp(api);
    const input = { payload: { text: 'é€😀', list: [1, 2.5, null, true], nested: { a: 'b' } } };
    const response = await call(api, '/v1/jobs', { token, json: { type: 'echo', input } });
    expect(response.status).toBe(202);
    const { rows } = await api.db.query<{ input_bytes: number }>('SELECT input_bytes FROM jobs WHERE id = $1', [response.body.id]);
    expect(rows).toEqual([{ input_bytes: Buffer.byteLength(JSON.stringify(input)) }]);
  });
});
