/**
 * A cancel that waited for the row lock of a job's start (the worker's transition batch)
 * must not say the job finished before it started. PostgreSQL's now() is when the cancel's
 * statement began, before that wait; the start it waited for may have written a later time.
 */
import { Client } from 'pg';
import { createEngineFixture, submission, waitFor, type EngineFixture } from './fixture';

describe('job engine: a cancel that waited for a start', () => {
  let fx: EngineFixture;

  beforeEach(async () => {
    fx = await createEngineFixture();
  });
  afterEach(async () => {
    await fx?.close();
  });

  it.each([
    ['a job of its own', 'sleep', { ms: 60_000 }],
    ['a fan-out job', 'echo.batch', { count: 2 }],
  ])('finishes %s no earlier than it started', async (_name, type, input) => {
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type, input }));
    const starter = new Client({ connectionString: fx.env.DATABASE_URL });
    await starter.connect();
    try {
      // The start holds the job's row while the cancel arrives, then writes its time and commits.
      await starter.query('BEGIN');
      await starter.query('SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE', [job.id]);
      const cancelled = fx.core.jobs.cancel(fx.ownerId, job.id);
      await waitFor('the cancel to wait for the row', async () => (await fx.query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")).length > 0);
      await starter.query("UPDATE jobs SET status = 'running', started_at = clock_timestamp() WHERE id = $1", [job.id]);
      await starter.query('COMMIT');
      await cancelled;
    } finally {
      await starter.end();
    }
    const row = await fx.one<{ status: string; started_at: Date; finished_at: Date }>('SELECT status, started_at, finished_at FROM jobs WHERE id = $1', [job.id]);
    expect(row.status).toBe('cancelled');
    expect(row.finished_at.getTime()).toBeGreaterThanOrEqual(row.started_at.getTime());
  });
});
