import { z } from 'zod';
import { JOB_STATUSES, type JobStatus } from '../contract';
import { UsageError } from './output';

/** Flag and argument parsers: a bad value is a UsageError naming the flag, before anything connects. */
export function uuid(value: string, name = 'job id'): string {
  if (!z.uuid().safeParse(value).success) throw new UsageError(`${name} must be a UUID, got ${JSON.stringify(value)}`);
  return value;
}

export function limit(value: string | undefined, fallback: number, max = 1_000): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > max) throw new UsageError(`--limit must be an integer from 1 to ${max}`);
  return parsed;
}

export function seconds(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new UsageError(`${flag} must be a positive number of seconds`);
  return parsed;
}

export function jobStatus(value: string | undefined): JobStatus | undefined {
  if (value === undefined) return undefined;
  if (!(JOB_STATUSES as readonly string[]).includes(value)) throw new UsageError(`--status must be one of ${JOB_STATUSES.join(', ')}`);
  return value as JobStatus;
}
