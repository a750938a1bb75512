import { isDatabaseUnavailable, isolateRowFaults, isRetryable, isRowFault } from '../../../services/core/db/errors';

const pgError = (code: string, message = 'error') => Object.assign(new Error(message), { code });

describe('PostgreSQL error classes', () => {
  it('tells a row\'s fault from an unavailable server and from a bug', () => {
    expect(isRowFault(pgError('22P05'))).toBe(true);
    expect(isRowFault(pgError('23503'))).toBe(true);
    expect(isRowFault(pgError('42P01'))).toBe(false);
    expect(isDatabaseUnavailable(pgError('57P01'))).toBe(true);
    expect(isDatabaseUnavailable(pgError('ECONNREFUSED'))).toBe(true);
    expect(isDatabaseUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isDatabaseUnavailable(new Error('Query read timeout'))).toBe(true);
    expect(isDatabaseUnavailable(new TypeError('x is undefined'))).toBe(false);
    expect(isRetryable(pgError('40001'))).toBe(true);
    expect(isRetryable(pgError('22P05'))).toBe(false);
  });
});

describe('isolateRowFaults', () => {
  it('splits a failing batch until the faulty rows stand alone, writing every other row', async () => {
    const statements: number[][] = [];
    const write = async (items: number[]) => {
      statements.push(items);
      if (items.includes(3) || items.includes(6)) throw pgError('22P05');
      return items.map((item) => `ok ${item}`);
    };
    const results = await isolateRowFaults([1, 2, 3, 4, 5, 6, 7, 8], write, async (item) => `bad ${item}`);
    expect(results).toEqual(['ok 1', 'ok 2', 'bad 3', 'ok 4', 'ok 5', 'bad 6', 'ok 7', 'ok 8']);
    // log₂ of the batch, not one statement per row.
    expect(statements.length).toBeLessThan(16);
  });

  it('throws anything that is not a row\'s fault', async () => {
    await expect(isolateRowFaults([1, 2], async () => Promise.reject(pgError('57P01')), async () => 'never')).rejects.toMatchObject({ code: '57P01' });
  });
});
