import { z } from 'zod';
import { findFirstInJson, type JsonPath } from './json-walk';

/** Any JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

function notJsonScalar(value: unknown): string | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : String(value);
  return value === undefined ? 'undefined' : `a ${typeof value}`;
}

function notPlainObject(value: object): string | undefined {
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null ? undefined : `an object of class ${(value as { constructor?: { name?: string } }).constructor?.name ?? 'unknown'}`;
}

/** Where `value` first holds something JSON has no way to write (undefined, NaN, a Date, a function…), or undefined when it is all JSON. */
export function findNonJson(value: unknown): { path: JsonPath; found: string } | undefined {
  const problem = findFirstInJson(value, { scalar: notJsonScalar, object: notPlainObject });
  return problem && { path: problem.path, found: problem.reason };
}

/**
 * Any JSON value, checked in one walk that copies nothing. Not a union of the six JSON
 * types: zod tries a union's members one by one for every nested value and builds the
 * failures of those that do not match (bench/FINDINGS.md). A value JSON.parse gave is JSON
 * by construction; what this refuses are a processor's results that JSON cannot write.
 * Documented as `{}` (any JSON value).
 */
export const JsonValue = z
  .unknown()
  .superRefine((value, ctx) => {
    const problem = findNonJson(value);
    if (problem) ctx.addIssue({ code: 'custom', message: `expected a JSON value, found ${problem.found}`, path: problem.path });
  })
  // An unknown to zod and the OpenAPI generator, which document it as `{}`; the check above makes it a JsonValue.
  .meta({ id: 'JsonValue', description: 'Any JSON value.' }) as z.ZodType<JsonValue>;
