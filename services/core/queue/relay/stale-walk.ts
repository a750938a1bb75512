import type { Keyset, QueueEntryRow } from '../../db/jobs';

/** Where a walk over stale rows ended (see walkStaleRows). */
export interface StaleWalk {
  /** Rows read. */
  checked: number;
  /** True when the walk read the newest stale row: the next one begins at the oldest again. */
  walkedToTheEnd: boolean;
  /** Where the next walk goes on from: undefined after a walk to the end (from the oldest). */
  next: Keyset | undefined;
}

/**
 * The sweep's walk over stale rows, oldest first, in keyset pages: reads pages from after
 * `from` (undefined: from the oldest) and hands each to `visit`, until a page comes back
 * short (the walk reached the newest stale row) or `maxRows` were read. Bounding a walk
 * keeps a sweep's cost bounded whatever the backlog; going on from where the last one
 * stopped lets every row be reached in turn, also behind rows that stay stale.
 */
export async function walkStaleRows(
  readPage: (after: Keyset | undefined) => Promise<QueueEntryRow[]>,
  bounds: { pageSize: number; maxRows: number; from: Keyset | undefined },
  visit: (rows: QueueEntryRow[]) => Promise<void>,
): Promise<StaleWalk> {
  let checked = 0;
  let after = bounds.from;
  while (checked < bounds.maxRows) {
    const rows = await readPage(after);
    const last = rows[rows.length - 1];
    if (last) {
      checked += rows.length;
      after = { at: last.updated_us, id: last.id };
      await visit(rows);
    }
    if (rows.length < bounds.pageSize) return { checked, walkedToTheEnd: true, next: undefined };
  }
  return { checked, walkedToTheEnd: false, next: after };
}
