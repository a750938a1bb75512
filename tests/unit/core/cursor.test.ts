import { decodeCursor, encodeCursor, pageOf } from '../../../services/core/jobs/cursor';
import { ValidationError } from '../../../services/core/errors';

const ID = '0190a0b0-0000-7000-8000-00000000000a';

describe('cursors', () => {
  it('round-trips a keyset', () => {
    const keyset = { at: 1_732_000_000_123_456, id: ID };
    expect(decodeCursor(encodeCursor(keyset))).toEqual(keyset);
    expect(decodeCursor(undefined)).toBeUndefined();
  });

  it.each(['', 'not-a-cursor', Buffer.from(`12.${'x'.repeat(36)}`).toString('base64url'), Buffer.from(`-1.${ID}`).toString('base64url')])(
    'refuses %j with a ValidationError on the cursor field',
    (cursor) => {
      expect(() => decodeCursor(cursor)).toThrow(ValidationError);
    },
  );
});

describe('pageOf', () => {
  const rows = Array.from({ length: 5 }, (_, index) => ({ id: `${ID.slice(0, -1)}${index}`, at: 100 - index }));

  it('takes `limit` rows and points the cursor after the last when more exist', () => {
    const page = pageOf(rows.slice(0, 4), 3, (row) => row.at, (row) => row.id);
    expect(page.items).toHaveLength(3);
    expect(decodeCursor(page.nextCursor ?? undefined)).toEqual({ at: 98, id: rows[2]?.id });
    expect(pageOf(rows.slice(0, 3), 3, (row) => row.at, (row) => row.id).nextCursor).toBeNull();
  });

  it('ends a page early when an item does not fit, never below one item', () => {
    const page = pageOf(rows, 4, (row) => row.at, (row) => row.id, (_item, before) => before < 2);
    expect(page.items).toEqual([rows[0]?.id, rows[1]?.id]);
    expect(decodeCursor(page.nextCursor ?? undefined)?.id).toBe(rows[1]?.id);
    expect(pageOf(rows, 4, (row) => row.at, (row) => row.id, () => false).items).toEqual([rows[0]?.id]);
  });
});
