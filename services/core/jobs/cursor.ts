import { validate as isUuid } from 'uuid';
import type { Keyset } from '../db/jobs';
import { ValidationError } from '../errors';

/** Opaque page cursors over a (timestamp in µs, id) keyset. */
export function encodeCursor(keyset: Keyset): string {
  return Buffer.from(`${keyset.at}.${keyset.id}`).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): Keyset | undefined {
  if (cursor === undefined) return undefined;
  const [at, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('.');
  const micros = Number(at);
  if (!Number.isSafeInteger(micros) || micros < 0 || !id || !isUuid(id)) {
    throw new ValidationError('The cursor is invalid.', [{ field: 'cursor', message: 'not a cursor this API returned' }]);
  }
  return { at: micros, id: id.toLowerCase() };
}

export interface Page<T> {
  items: T[];
  /** Opaque; pass back as `cursor` for the next page. Null on the last page. */
  nextCursor: string | null;
}

/**
 * One page out of rows read with `limit + 1` (the extra row only says whether a next page
 * exists). `fits`, when given, may end the page early (a size budget): the page then holds
 * at least one item and the cursor continues after the last one it holds.
 */
export function pageOf<Row extends { id: string }, Item>(
  rows: Row[],
  limit: number,
  keysetAt: (row: Row) => number,
  toItem: (row: Row) => Item,
  fits: (item: Item, itemsSoFar: number) => boolean = () => true,
): Page<Item> {
  const items: Item[] = [];
  let last: Row | undefined;
  for (const row of rows.slice(0, limit)) {
    const item = toItem(row);
    if (!fits(item, items.length) && items.length > 0) break;
    items.push(item);
    last = row;
  }
  const more = rows.length > items.length;
  return { items, nextCursor: more && last ? encodeCursor({ at: keysetAt(last), id: last.id }) : null };
}
