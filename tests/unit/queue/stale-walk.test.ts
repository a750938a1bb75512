import type { Keyset, QueueEntryRow } from '../../../services/core/db/jobs';
import { walkStaleRows } from '../../../services/core/queue/relay/stale-walk';

/** Stale rows oldest first, as findStaleQueued and findStaleRunning read them. */
function staleRows(count: number): QueueEntryRow[] {
  return Array.from({ length: count }, (_, index) => ({
    id: `00000000-0000-7000-8000-${String(index).padStart(12, '0')}`,
    type: 'echo',
    priority: 0,
    status: 'queued',
    attempts: 0,
    max_attempts: 3,
    deferrals: 0,
    lock_lapses: 0,
    lock_lapses_entry: null,
    updated_us: 1_000 + index,
  }));
}

/** A page reader over `rows` that records the keyset each read went on from. */
function pagesOf(rows: QueueEntryRow[], pageSize: number) {
  const reads: (Keyset | undefined)[] = [];
  const readPage = async (after: Keyset | undefined) => {
    reads.push(after);
    const start = after === undefined ? 0 : rows.findIndex((row) => row.id === after.id) + 1;
    return rows.slice(start, start + pageSize);
  };
  return { readPage, reads };
}

describe('walkStaleRows', () => {
  it('visits every row a page at a time and ends at a short page, the next walk beginning at the oldest', async () => {
    const rows = staleRows(5);
    const { readPage, reads } = pagesOf(rows, 2);
    const visited: string[][] = [];
    const walk = await walkStaleRows(readPage, { pageSize: 2, maxRows: 100, from: undefined }, async (page) => {
      visited.push(page.map((row) => row.id));
    });
    expect(walk).toEqual({ checked: 5, walkedToTheEnd: true, next: undefined });
    expect(visited.flat()).toEqual(rows.map((row) => row.id));
    expect(reads).toEqual([undefined, { at: 1_001, id: rows[1]?.id }, { at: 1_003, id: rows[3]?.id }]);
  });

  it('ends at an empty page when the rows fill whole pages, visiting nothing for it', async () => {
    const { readPage } = pagesOf(staleRows(4), 2);
    let visits = 0;
    const walk = await walkStaleRows(readPage, { pageSize: 2, maxRows: 100, from: undefined }, async () => {
      visits += 1;
    });
    expect(walk).toEqual({ checked: 4, walkedToTheEnd: true, next: undefined });
    expect(visits).toBe(2);
  });

  it('stops once maxRows were read and goes on from there next time, so every row is reached in turn', async () => {
    const rows = staleRows(7);
    const { readPage } = pagesOf(rows, 2);
    const visited: string[] = [];
    const visit = async (page: QueueEntryRow[]) => {
      visited.push(...page.map((row) => row.id));
    };
    const first = await walkStaleRows(readPage, { pageSize: 2, maxRows: 3, from: undefined }, visit);
    expect(first).toEqual({ checked: 4, walkedToTheEnd: false, next: { at: 1_003, id: rows[3]?.id } });
    const second = await walkStaleRows(readPage, { pageSize: 2, maxRows: 3, from: first.next }, visit);
    expect(second).toEqual({ checked: 3, walkedToTheEnd: true, next: undefined });
    expect(visited).toEqual(rows.map((row) => row.id));
  });

  it('lets a failing visit end the walk with its error, leaving the caller\'s cursor where it was', async () => {
    const { readPage } = pagesOf(staleRows(3), 2);
    await expect(
      walkStaleRows(readPage, { pageSize: 2, maxRows: 100, from: undefined }, async () => {
        throw new Error('Redis did not answer');
      }),
    ).rejects.toThrow('Redis did not answer');
  });
});
