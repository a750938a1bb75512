import { INLINE_INPUT_BYTES, loadDeliveries } from '../../../services/core/db/jobs';
import { createEngineFixture, submission, type EngineFixture } from './fixture';

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
});
