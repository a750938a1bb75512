/**
 * A worker's state write sent just as PostgreSQL stalls: the client gives up on it (its
 * query timeout) and tries again, while the server, once it resumes, runs what it was sent
 * and commits it. Found under `npm start` with PostgreSQL paused 20 s under load: a job's
 * audit trail showed its `queued → running` row twice, both of the one start (same time).
 * The move is made once, the trail has one row, and the worker is told its start applied
 * (told otherwise, it would stop the run it just began).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { Pool } from 'pg';
import { TransitionWriter } from '../../../services/core/jobs/transitions';
import { startPostgres, type PostgresServer } from '../../harness/postgres';
import { useSharedServices } from '../../harness/shared';
import { createEngineFixture, submission, type EngineFixture } from './fixture';

let postgres: PostgresServer;
let fx: EngineFixture;

beforeAll(async () => {
  postgres = await startPostgres();
  const { redisUrl, redisPrefix } = await useSharedServices();
  fx = await createEngineFixture({ servers: { databaseUrl: await postgres.createDatabase(), redisUrl, redisPrefix } });
}, 60_000);

afterAll(async () => {
  postgres?.resume();
  await fx?.close();
  await postgres?.destroy();
});

it('writes a start whose answer was lost in a stall once: one audit row, and the worker told it applied', async () => {
  const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: 'stalled start' } }));
  const pool = new Pool({ connectionString: fx.env.DATABASE_URL, max: 1, idleTimeoutMillis: 0, query_timeout: 1_000 });
  const writer = new TransitionWriter({ batchPool: pool, generalPool: pool, log: fx.log }, { windowMs: 0 });
  try {
    await pool.query('SELECT 1');
    postgres.pause();
    const started = writer.record({ event: 'start', jobId: job.id, attempt: 1, at: Date.now(), from: 'queued' });
    // Past the client's wait, so the write is tried again while the first is still unanswered.
    await delay(1_500);
    postgres.resume();
    await expect(started).resolves.toBe(true);

    const trail = await fx.query<{ from_status: string | null; to_status: string }>('SELECT from_status, to_status FROM job_events WHERE job_id = $1 ORDER BY id', [job.id]);
    expect(trail).toEqual([
      { from_status: null, to_status: 'queued' },
      { from_status: 'queued', to_status: 'running' },
    ]);
    expect(await fx.one<{ status: string; attempts: number }>('SELECT status, attempts FROM jobs WHERE id = $1', [job.id])).toEqual({ status: 'running', attempts: 1 });
  } finally {
    postgres.resume();
    await writer.close();
    await pool.end();
  }
}, 60_000);
