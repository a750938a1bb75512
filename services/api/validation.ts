import { z } from 'zod';
import { NotFoundError, ValidationError, type FieldIssue } from '../core/errors';

/** Parses with a zod schema; failures become a ValidationError listing each field (prefixed, e.g. `query.limit`). */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, what: string, prefix?: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues: FieldIssue[] = result.error.issues.map((issue) => ({
    field: [prefix, ...issue.path.map(String)].filter(Boolean).join('.') || '(root)',
    message: issue.message,
  }));
  throw new ValidationError(`invalid ${what}`, issues);
}

const Uuid = z.uuid();

/** Ids in paths are UUIDs; a malformed one names nothing, so it is a 404 like any other missing resource. */
export function requireUuid(value: unknown, what: string): string {
  const result = Uuid.safeParse(value);
  if (!result.success) throw new NotFoundError(`${what} not found`);
  return result.data;
}
