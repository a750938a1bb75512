import type { PoolClient } from 'pg';
import { INLINE_INPUT_BYTES, loadDeliveries } from '../../../services/core/db/jobs';
import { createEngineFixture, statusOf, submission, waitFor, type EngineFixture } from './fixture';

/** Bytes of a value's compact JSON text as UTF-8. */
const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

describe('job engine: large inputs', () => {
  let fx: EngineFixture;

  beforeAll(async () => {
    fx = await createEngineFixture();
  });
  afterAll(async () => {
    await fx?.close();
  });

  it('writes each input\'s size with the job, and the delivery read takes it from there', async () => {
    const small = { payload: { note: 'ça va ✓', list: [1, null, true] } };
    const large = { payload: 'é'.repeat(INLINE_INPUT_BYTES) };
    const [inline, apart] = await Promise.all([small, large].map((input) => fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input }))));
    const stored = await fx.query<{ id: string; input_bytes: number }>('SELECT id, input_bytes FROM jobs WHERE id = ANY($1::uuid[])', [[inline!.job.id, apart!.job.id]]);
    expect(Object.fromEntries(stored.map((row) => [row.id, row.input_bytes]))).toEqual({ [inline!.job.id]: jsonBytes(small), [apart!.job.id]: jsonBytes(large) });

    const deliveries = new Map((await loadDeliveries(fx.core.batchPool, [inline!.job.id, apart!.job.id])).map((row) => [row.id, row]));
    expect(deliveries.get(inline!.job.id)).toMatchObject({ input_bytes: jsonBytes(small), input_inline: true, input: small });
    expect(deliveries.get(apart!.job.id)).toMatchObject({ input_bytes: jsonBytes(large), input_inline: false, input: null });
  });

  it('measures a job written before its size was (migration 0009) as before: small ones as stored, larger ones as text', async () => {
    const tiny = { payload: 1 };
    const large = { payload: Array.from({ length: 20_000 }, (_, index) => index) };
    const jobs = await Promise.all([tiny, large].map((input) => fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input }))));
    const ids = jobs.map(({ job }) => job.id);
    await fx.query('UPDATE jobs SET input_bytes = NULL WHERE id = ANY($1::uuid[])', [ids]);
    const measured = await fx.query<{ id: string; stored: number; text: number }>(
      'SELECT id, pg_column_size(input) AS stored, octet_length(input::text) AS text FROM jobs WHERE id = ANY($1::uuid[])',
      [ids],
    );
    const byId = new Map(measured.map((row) => [row.id, row]));
    const deliveries = new Map((await loadDeliveries(fx.core.batchPool, ids)).map((row) => [row.id, row]));
    expect(deliveries.get(ids[0]!)).toMatchObject({ input_bytes: byId.get(ids[0]!)!.stored, input_inline: true });
    expect(deliveries.get(ids[1]!)).toMatchObject({ input_bytes: byId.get(ids[1]!)!.text, input_inline: false });
  });

  it('writes the sizes of a fan-out job\'s input and of its tasks\'', async () => {
    const input = { count: 3, payload: { word: 'naïve' } };
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo.batch', input }));
    const rows = await fx.query<{ parent_id: string | null; input_bytes: number; input: unknown }>(
      'SELECT parent_id, input_bytes, input FROM jobs WHERE id = $1 OR parent_id = $1',
      [job.id],
    );
    expect(rows).toHaveLength(4);
    for (const row of rows) expect(row.input_bytes).toBe(jsonBytes(row.input));
  });

  it('runs other jobs to the end while a large-input job\'s state write waits', async () => {
    const large = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: 'x'.repeat(INLINE_INPUT_BYTES * 2) } }));
    // Holds the large job's row as a long write would: its start (an UPDATE of that row) waits.
    const held: PoolClient = await fx.core.generalPool.connect();
    try {
      await held.query('BEGIN');
      await held.query('SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE', [large.job.id]);
      await fx.startRunner();
      await waitFor('the large job\'s start to wait for its row', async () => {
        const waiting = await fx.query<{ count: number }>(
          "SELECT count(*)::int AS count FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%UPDATE jobs%'",
        );
        return waiting[0]!.count > 0;
      });

      const small = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: 'small' } }));
      // With one lane for all, the small job's start would wait in the tick behind the held
      // write until the batch statements' timeout (10 s) cancelled it.
      await waitFor('the small job to succeed', async () => (await statusOf(fx, small.job.id)) === 'succeeded', 5_000);
      expect(await statusOf(fx, large.job.id)).toBe('queued');
    } finally {
      await held.query('ROLLBACK');
      held.release();
    }
    await waitFor('the large job to succeed once its row is free', async () => (await statusOf(fx, large.job.id)) === 'succeeded');
  });
});
