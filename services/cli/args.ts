import { z } from 'zod';
import { EnvSchema, findJobType, JOB_STATUSES, JOB_TYPES, type JobStatus } from '../contract';
import { decodeCursor } from '../core/jobs/cursor';
import { UsageError, shownArgument } from './output';

/**
 * Flag and argument parsers: a bad value is a UsageError naming the flag, before anything
 * connects. Numbers are plain decimal digits: `Number()` alone would take '', ' 5', '0x10'
 * and '1e3', so an empty shell variable (`--retention-days "$DAYS"`) would read as 0.
 */
export function uuid(value: string, name = 'job id'): string {
  if (!z.uuid().safeParse(value).success) throw new UsageError(`${name} must be a UUID, got ${shownArgument(value)}`);
  return value;
}

const WHOLE_NUMBER = /^[0-9]+$/;
const DECIMAL_NUMBER = /^[0-9]+(\.[0-9]+)?$/;

/** A whole number from `min` to `max`, or the message naming `what` and the range. */
function wholeNumber(value: string, min: number, max: number, what: string): number {
  const parsed = WHOLE_NUMBER.test(value) ? Number(value) : Number.NaN;
  if (!(parsed >= min && parsed <= max)) throw new UsageError(`${what} must be a whole number from ${min} to ${max}, got ${shownArgument(value)}`);
  return parsed;
}

export function limit(value: string | undefined, fallback: number, max = 1_000): number {
  return value === undefined ? fallback : wholeNumber(value, 1, max, '--limit');
}

export function seconds(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = DECIMAL_NUMBER.test(value) ? Number(value) : Number.NaN;
  if (!(parsed > 0 && Number.isFinite(parsed))) throw new UsageError(`${flag} must be a positive number of seconds, got ${shownArgument(value)}`);
  return parsed;
}

/** PostgreSQL's backend pids are `integer`s: a larger number would fail inside the query instead of here. */
export function pid(value: string): number {
  return wholeNumber(value, 1, 2_147_483_647, 'pid');
}

/**
 * What JOB_RETENTION_DAYS allows (a positive number of days, up to its maximum), so an
 * override cannot ask for what the setting could not: 0 would purge every finished job.
 */
const RETENTION_DAYS = EnvSchema.shape.JOB_RETENTION_DAYS.unwrap();
const RETENTION_DAYS_EXPECTED = RETENTION_DAYS.safeParse('').error?.issues[0]?.message ?? 'must be a whole number of days';

export function retentionDays(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = WHOLE_NUMBER.test(value) ? RETENTION_DAYS.safeParse(value) : undefined;
  if (!parsed?.success) throw new UsageError(`--retention-days ${RETENTION_DAYS_EXPECTED}, got ${shownArgument(value)}`);
  return parsed.data;
}

/** A page cursor as a previous page printed it; anything else is refused here rather than by the query. */
export function cursor(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    decodeCursor(value);
  } catch {
    throw new UsageError('--cursor must be a cursor a previous page printed (after "next page:")');
  }
  return value;
}

export function jobStatus(value: string | undefined): JobStatus | undefined {
  if (value === undefined) return undefined;
  if (!(JOB_STATUSES as readonly string[]).includes(value)) throw new UsageError(`--status must be one of ${JOB_STATUSES.join(', ')}, got ${shownArgument(value)}`);
  return value as JobStatus;
}

/** Every type of the registry, internal ones too: an operator lists email.send jobs as well. */
export const KNOWN_JOB_TYPES: readonly string[] = Object.keys(JOB_TYPES);

/** A type the registry declares. A misspelt one would match no job, and an empty list would read as "none of those". */
export function jobType(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!findJobType(value)) throw new UsageError(`--type must be one of ${KNOWN_JOB_TYPES.join(', ')}, got ${shownArgument(value)}`);
  return value;
}
