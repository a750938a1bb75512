import type { Keyset } from '../db/jobs';
import { ValidationError } from '../errors';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Opaque page cursors over a (timestamp in µs, id) keyset. */
export function encodeCursor(keyset: Keyset): string {
  return Buffer.from(`${keyset.at}.${keyset.id}`).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): Keyset | undefined {
  if (cursor === undefined) return undefined;
  const [at, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('.');
  const micros = Number(at);
  if (!Number.isSafeInteger(micros) || micros < 0 || !id || !UUID.test(id)) {
    throw new ValidationError('The cursor is invalid.', [{ field: 'cursor', message: 'not a cursor this API returned' }]);
  }
  return { at: micros, id };
}
