import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { parseEnv, WorkerEnvSchema } from '../../../services/contract';
import { applyTransitions, findByIdempotencyKeys, insertJobs, loadDeliveries, type NewJob } from '../../../services/core/db/jobs';
import { createBatchPool, createGeneralPool } from '../../../services/core/db/pool';
import { useSharedServices } from '../../harness/shared';
import { createUser } from './fixture';

/**
 * A batch statement that joins a JSON document to jobs must reach its rows through the
 * primary key however large the table grows, also after its connection has run it many
 * times: on the main pool, which plans every run, and on the batch pool, whose cached
 * plan is made while the table is tiny (where PostgreSQL would pick a sequential scan).
 */
describe.each([
  ['the general pool (planned on every run)', createGeneralPool],
  ['the batch pool (plan cached per connection)', createBatchPool],
])('job statements on %s keep using the index as the table grows', (_name, create) => {
  let pool: Pool;
  let ownerId: string;

  beforeAll(async () => {
    const { databaseUrl } = await useSharedServices();
    ownerId = await createUser(databaseUrl);
    // One connection, so every run below shares its plan cache.
    pool = create(parseEnv({ DATABASE_URL: databaseUrl, REDIS_URL: 'redis://127.0.0.1:1', DATABASE_POOL_MAX: '1' }, WorkerEnvSchema));
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

  const keyed = (jobs: NewJob[]) => jobs.map((job) => ({ ...job, idempotency_key: `key-${job.id}` }));

  it('reads, applies transitions and finds idempotency keys by index on a connection that ran them while the table was tiny', async () => {
    for (let run = 0; run < 8; run += 1) {
      const [job] = await insertJobs(pool, keyed(newJobs(1)));
      expect(await loadDeliveries(pool, [job!.id])).toEqual([
        expect.objectContaining({ id: job!.id, owner_id: ownerId, type: 'echo', input: {}, status: 'queued', attempts: 0, max_attempts: 3 }),
      ]);
      expect(await findByIdempotencyKeys(pool, [{ ownerId, key: `key-${job!.id}` }])).toHaveLength(1);
      expect((await succeed([job!.id])).applied).toEqual(new Set([job!.id]));
    }
    for (let batch = 0; batch < 10; batch += 1) await insertJobs(pool, newJobs(500));

    const before = await sequentialScansOfJobs();
    for (let run = 0; run < 5; run += 1) {
      const rows = await insertJobs(pool, keyed(newJobs(3)));
      const ids = rows.map((row) => row.id);
      expect((await loadDeliveries(pool, ids)).map((row) => row.id).sort()).toEqual([...ids].sort());
      expect(await findByIdempotencyKeys(pool, ids.map((id) => ({ ownerId, key: `key-${id}` })))).toHaveLength(3);
      expect((await succeed(ids)).applied.size).toBe(3);
    }
    expect((await sequentialScansOfJobs()) - before).toBe(0);
  });
});
