import { MAX_JSON_DEPTH } from '../contract';
import { JsonTooDeepError, toStorable } from '../core/json';
import { PermanentJobError } from './processor';

/** Results may nest a little deeper than inputs (echo wraps its payload). */
export const MAX_RESULT_DEPTH = MAX_JSON_DEPTH * 2;

/**
 * The result as PostgreSQL can store it (see toStorable: characters it refuses are
 * replaced). A result nested absurdly deep is a bug of the processor, not worth a retry:
 * PermanentJobError.
 */
export function storableResult(result: unknown): unknown {
  try {
    return toStorable(result, MAX_RESULT_DEPTH);
  } catch (error) {
    if (error instanceof JsonTooDeepError) throw new PermanentJobError(`the processor returned a result ${error.message}`);
    throw error;
  }
}
