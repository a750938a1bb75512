import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { parseEnv, WorkerEnvSchema } from '../../../services/contract';
import { applyTransitions, insertJobs, type NewJob } from '../../../services/core/db/jobs';
import { createPool } from '../../../services/core/db/pool';
import { useSharedServices } from '../../harness/shared';
import { createUser } from './fixture';

/**
 * A batch statement that joins a JSON document to jobs must reach its rows through the
 * primary key however large the table grows, also after its connection has run it many
 * times (when PostgreSQL would settle on a generic plan made while the table was tiny).
 */
describe('job statements keep using the index as the table grows', () => {
  let pool: Pool;
  let ownerId: string;

  beforeAll(async () => {
    const { databaseUrl } = await useSharedServices();
    ownerId = await createUser(databaseUrl);
    // One connection, so every run below shares its plan cache.
    pool = createPool(parseEnv({ DATABASE_URL: databaseUrl, REDIS_URL: 'redis://127.0.0.1:1', DATABASE_POOL_MAX: '1' }, WorkerEnvSchema));
  });
  afterAll(() => pool?.end());

  const newJobs = (count: number): NewJob[] =>
    Array.from({ length: count }, () => ({
      id: randomUUID(),
      owner_id: ownerId,
      type: 'echo',
      input: {},
      max_attempts: 3,
      priority: 0,
      idempotency_key: null,
      request_hash: null,
      request_id: null,
    }));

  const succeed = (ids: string[]) =>
    applyTransitions(
      pool,
      ids.map((id) => ({ id, expected: ['queued'], status: 'succeeded', attempt: 1, attempts: 1, result: {}, finished_ms: Date.now() })),
      [],
    );

  async function sequentialScansOfJobs(): Promise<number> {
    await pool.query('SELECT pg_stat_force_next_flush()');
    const { rows } = await pool.query<{ seq_scan: number }>("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'jobs'");
    return rows[0]?.seq_scan ?? 0;
  }

  it('applies transitions by primary key on a connection that ran them while the table was tiny', async () => {
    for (let run = 0; run < 8; run += 1) {
      const [job] = await insertJobs(pool, newJobs(1));
      expect(await succeed([job!.id])).toEqual(new Set([job!.id]));
    }
    for (let batch = 0; batch < 10; batch += 1) await insertJobs(pool, newJobs(500));

    const before = await sequentialScansOfJobs();
    for (let run = 0; run < 5; run += 1) {
      const rows = await insertJobs(pool, newJobs(3));
      expect((await succeed(rows.map((row) => row.id))).size).toBe(3);
    }
    expect((await sequentialScansOfJobs()) - before).toBe(0);
  });
});
