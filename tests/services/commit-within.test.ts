/**
 * commitWithin (a transaction that commits only while its caller still waits) and
 * answerWithin with require_started_before (one statement that runs only while its caller
 * still waits). What happens when PostgreSQL stops answering is tested through the API
 * (tests/services/api/health.test.ts); here, what they do when PostgreSQL does answer.
 */
import { Pool } from 'pg';
import { DatabaseDeadlineError, isDatabaseUnavailable, isStatementTimeout } from '../../services/core/db/errors';
import { answerWithin, commitWithin } from '../../services/core/db/transaction';
import { useSharedServices } from '../harness/shared';

let pool: Pool;

beforeAll(async () => {
  const { databaseUrl } = await useSharedServices();
  pool = new Pool({ connectionString: databaseUrl, max: 1, idleTimeoutMillis: 0 });
  await pool.query('CREATE TEMP TABLE IF NOT EXISTS marks (id int PRIMARY KEY)');
});

afterAll(async () => {
  await pool.end();
});

// A pool of one connection: a temp table lives as long as that session, so it also shows the session was kept.
const marks = async () => (await pool.query<{ id: number }>('SELECT id FROM marks ORDER BY id')).rows.map((row) => row.id);

describe('commitWithin', () => {
  beforeAll(() => pool.query('TRUNCATE marks'));

  it('commits the work and returns its result', async () => {
    const result = await commitWithin(pool, 5_000, async (client) => (await client.query<{ id: number }>('INSERT INTO marks VALUES (1) RETURNING id')).rows[0]?.id);
    expect(result).toBe(1);
    expect(await marks()).toEqual([1]);
  });

  it('rolls back work PostgreSQL refused, hands its error on, and keeps the session', async () => {
    const failed = commitWithin(pool, 5_000, async (client) => {
      await client.query('INSERT INTO marks VALUES (2)');
      await client.query('INSERT INTO marks VALUES (1)'); // a duplicate key: 23505
    });
    await expect(failed).rejects.toMatchObject({ code: '23505' });
    expect(await marks()).toEqual([1]);
  });

  it('refuses at once when no time is left, without touching the database', async () => {
    await expect(commitWithin(pool, 0, () => pool.query('INSERT INTO marks VALUES (3)'))).rejects.toBeInstanceOf(DatabaseDeadlineError);
    expect(await marks()).toEqual([1]);
  });

  it('is an outage to the callers that classify errors: the API answers it 503, a worker retries', () => {
    expect(isDatabaseUnavailable(new DatabaseDeadlineError())).toBe(true);
  });
});

describe('answerWithin and require_started_before', () => {
  beforeAll(() => pool.query('TRUNCATE marks'));

  const insertUnless = (client: { query: Pool['query'] }, id: number, startBefore: number | null) =>
    client.query('INSERT INTO marks SELECT $1 WHERE (SELECT require_started_before(to_timestamp($2::float8 / 1000)))', [id, startBefore]);

  it('runs a statement the server starts before its deadline, and one without a deadline', async () => {
    await answerWithin(pool, 5_000, (client) => insertUnless(client, 1, Date.now() + 60_000));
    await answerWithin(pool, 5_000, (client) => insertUnless(client, 2, null));
    expect(await marks()).toEqual([1, 2]);
  });

  it('refuses a statement the server starts after its deadline as a statement timeout, writing nothing and keeping the session', async () => {
    const late = answerWithin(pool, 5_000, (client) => insertUnless(client, 3, Date.now() - 1));
    await expect(late).rejects.toMatchObject({ code: '57014', message: expect.stringMatching(/after the time its caller allowed/) });
    expect(isStatementTimeout(await late.catch((error: unknown) => error))).toBe(true);
    expect(await marks()).toEqual([1, 2]);
  });

  it('refuses at once when no time is left, without touching the database', async () => {
    await expect(answerWithin(pool, 0, (client) => insertUnless(client, 4, null))).rejects.toBeInstanceOf(DatabaseDeadlineError);
    expect(await marks()).toEqual([1, 2]);
  });
});
