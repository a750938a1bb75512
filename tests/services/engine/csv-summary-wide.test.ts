/**
 * csv.summary on a table whose header is far wider than its rows, through the real runner,
 * PostgreSQL and Redis. Such a file is small and legal, and a summary must cost what its
 * cells cost: the worker's event loop, which every other job of the worker shares (lock
 * renewals, state writes, PostgreSQL connections), must stay free while it runs.
 */
import { createEngineFixture, finished, submission, uploadFile, waitFor, type EngineFixture } from './fixture';

const COLUMNS = 10_000;
const ROWS = 100_000;

describe('job engine: csv.summary of a wide header over narrow rows', () => {
  let fx: EngineFixture;

  beforeAll(async () => {
    fx = await createEngineFixture();
    await fx.startRunner();
  });
  afterAll(async () => {
    await fx?.close();
  });

  // Under the tests' 2 s locks, one read of the file (64 KiB, 32,768 rows of another width than the header) held the loop past the lock three times: dead-lettered as a crash loop.
  it('summarises every column without holding the worker\'s event loop past its locks, and another user\'s job runs meanwhile', async () => {
    const header = Array.from({ length: COLUMNS }, (_, index) => `c${index}`).join(',');
    const csv = `${header}\n${'7\n'.repeat(ROWS)}`;
    const file = await uploadFile(fx, 'wide.csv', 'text/csv', csv);
    const other = await fx.createUser();

    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'csv.summary', input: { fileId: file.id } }));
    await waitFor('the summary to start', async () => (await fx.core.jobs.get(fx.ownerId, job.id)).status === 'running');
    const { job: echo } = await fx.core.jobs.submit(submission({ ownerId: other, type: 'echo', input: { payload: 'meanwhile' } }));
    const echoed = await finished(fx, echo.id, { ownerId: other });
    expect({ status: echoed.status, result: echoed.result }).toEqual({ status: 'succeeded', result: { payload: 'meanwhile' } });

    const done = await finished(fx, job.id, { timeoutMs: 60_000 });
    expect({ status: done.status, attempts: done.attempts, error: done.error }).toEqual({ status: 'succeeded', attempts: 1, error: null });
    const result = done.result as { rows: number; columns: { name: string; count: number; empty: number; numeric?: unknown }[] };
    expect(result.rows).toBe(ROWS);
    expect(result.columns).toHaveLength(COLUMNS);
    expect(result.columns[0]).toEqual({ name: 'c0', count: ROWS, empty: 0, numeric: { min: 7, max: 7, mean: 7 } });
    expect(result.columns.slice(1).every((column, index) => column.name === `c${index + 1}` && column.count === 0 && column.empty === ROWS && column.numeric === undefined)).toBe(true);
  }, 90_000);
});
