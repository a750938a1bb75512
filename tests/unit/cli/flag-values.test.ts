import { cursor, limit, pid, retentionDays, seconds } from '../../../services/cli/args';
import { UsageError } from '../../../services/cli/output';
import { encodeCursor } from '../../../services/core/jobs/cursor';

/** Number() takes all of these for numbers; an operator typing them never means what it makes of them. */
const NOT_DECIMAL = ['', ' 5', '5 ', '0x10', '1e3', '+5', '5.', '.5', 'Infinity', 'NaN', '٥'];

describe('platform flag values', () => {
  it('takes plain decimal whole numbers in range for --limit, pid and --retention-days', () => {
    expect(limit('1', 20)).toBe(1);
    expect(limit('1000', 20)).toBe(1000);
    expect(limit('007', 20)).toBe(7);
    expect(limit(undefined, 20)).toBe(20);
    expect(pid('4242')).toBe(4242);
    expect(pid('2147483647')).toBe(2_147_483_647);
    expect(retentionDays('1')).toBe(1);
    expect(retentionDays('3650')).toBe(3650);
    expect(retentionDays(undefined)).toBeUndefined();
  });

  it.each(NOT_DECIMAL)('refuses %j for --limit, pid and --retention-days, naming the flag and the range', (value) => {
    expect(() => limit(value, 20)).toThrow(new UsageError(`--limit must be a whole number from 1 to 1000, got ${JSON.stringify(value)}`));
    expect(() => pid(value)).toThrow(new UsageError(`pid must be a whole number from 1 to 2147483647, got ${JSON.stringify(value)}`));
    expect(() => retentionDays(value)).toThrow(new UsageError(`--retention-days must be a whole number of days from 1 to 3650, in digits only, got ${JSON.stringify(value)}`));
  });

  it('refuses numbers outside the range: 0 days would purge every finished job, a pid past PostgreSQL integers failed in the query', () => {
    expect(() => limit('9'.repeat(400), 20)).toThrow(UsageError);
    expect(() => limit('0', 20)).toThrow(UsageError);
    expect(() => limit('1001', 20)).toThrow(UsageError);
    expect(() => limit('5.0', 20)).toThrow(UsageError);
    expect(() => retentionDays('0')).toThrow(UsageError);
    expect(() => retentionDays('3651')).toThrow(UsageError);
    expect(() => pid('0')).toThrow(UsageError);
    expect(() => pid('2147483648')).toThrow(UsageError);
  });

  it('takes positive decimal seconds and refuses anything else, naming the flag', () => {
    expect(seconds('--worker-timeout', '30', 1)).toBe(30);
    expect(seconds('--worker-timeout', '0.5', 1)).toBe(0.5);
    expect(seconds('--worker-timeout', undefined, 1)).toBe(1);
    for (const value of [...NOT_DECIMAL, '0', '0.0', '-1']) {
      expect(() => seconds('--max-queue-age', value, 1)).toThrow(new UsageError(`--max-queue-age must be a positive number of seconds, got ${JSON.stringify(value)}`));
    }
    // 400 nines are Infinity to Number(); the message quotes the start of so long a value.
    expect(() => seconds('--max-queue-age', '9'.repeat(400), 1)).toThrow(new UsageError(`--max-queue-age must be a positive number of seconds, got "${'9'.repeat(80)}"… (400 characters)`));
  });

  it('takes a cursor a page printed and refuses anything else before a query sees it', () => {
    const printed = encodeCursor({ at: 1_796_165_593_006_242, id: '01a233cf-e7aa-72df-8b4f-581b86a88957' });
    expect(cursor(printed)).toBe(printed);
    expect(cursor(undefined)).toBeUndefined();
    for (const value of ['garbage', '', 'x'.repeat(5_000), Buffer.from('-1.01a233cf-e7aa-72df-8b4f-581b86a88957').toString('base64url')]) {
      expect(() => cursor(value)).toThrow(new UsageError('--cursor must be a cursor a previous page printed (after "next page:")'));
    }
  });
});
