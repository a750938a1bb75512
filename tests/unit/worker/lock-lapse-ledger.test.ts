import { setTimeout as delay } from 'node:timers/promises';
import type { LockLapseRow } from '../../../services/core/db/jobs';
import { createLogger } from '../../../services/core/logger';
import { LockLapseLedger } from '../../../services/worker/lock-lapse-ledger';

const log = createLogger({ service: 'lock-lapse-ledger-test', level: 'silent' });

/** A stand-in for the jobs table's lapse columns, with a switch for PostgreSQL being away. */
function table() {
  const rows = new Map<string, number>();
  const state = { away: false, writes: 0, reads: 0 };
  const key = (jobId: string, entryAddedAt: number) => `${jobId}@${entryAddedAt}`;
  return {
    state,
    rows,
    async write(lapses: readonly LockLapseRow[]) {
      state.writes += 1;
      if (state.away) throw new Error('connection refused');
      for (const lapse of lapses) rows.set(key(lapse.jobId, lapse.entryAddedAt), (rows.get(key(lapse.jobId, lapse.entryAddedAt)) ?? 0) + 1);
    },
    async read(jobId: string, entryAddedAt: number) {
      state.reads += 1;
      if (state.away) throw new Error('connection refused');
      return rows.get(key(jobId, entryAddedAt)) ?? 0;
    },
  };
}

function ledgerOver(db: ReturnType<typeof table>, options: { maxUnwritten?: number; log?: typeof log } = {}) {
  return new LockLapseLedger({ write: (lapses) => db.write(lapses), read: (jobId, at) => db.read(jobId, at), log, firstRetryMs: 10, maxRetryMs: 20, ...options });
}

describe('LockLapseLedger', () => {
  it('writes a lapse at once while PostgreSQL answers', async () => {
    const db = table();
    const ledger = ledgerOver(db);
    await ledger.record([{ jobId: 'a', entryAddedAt: 1 }]);
    expect(db.rows.get('a@1')).toBe(1);
    expect(ledger.unwrittenCount).toBe(0);
    expect(await ledger.lapsesOf('a', 1)).toBe(1);
    expect(await ledger.lapsesOf('a', 2)).toBe(0);
  });

  it('keeps lapses PostgreSQL refused and writes them on its own once it answers, saying so once each way', async () => {
    const db = table();
    const lines: { level: number; msg: string }[] = [];
    const recording = createLogger({ service: 'test', level: 'info', destination: { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) } });
    const ledger = ledgerOver(db, { log: recording });
    db.state.away = true;
    await ledger.record([{ jobId: 'a', entryAddedAt: 1 }]);
    await ledger.record([{ jobId: 'a', entryAddedAt: 1 }, { jobId: 'b', entryAddedAt: 5 }]);
    expect(ledger.unwrittenCount).toBe(3);
    expect(db.rows.size).toBe(0);
    // Long enough for retries that fail too: they are not said again.
    await delay(80);
    expect(db.state.writes).toBeGreaterThan(2);

    db.state.away = false;
    for (let waited = 0; ledger.unwrittenCount > 0 && waited < 2_000; waited += 10) await delay(10);
    expect(ledger.unwrittenCount).toBe(0);
    expect(Object.fromEntries(db.rows)).toEqual({ 'a@1': 2, 'b@5': 1 });
    expect(lines.map((line) => line.msg)).toEqual([
      'could not record the lock lapses of runs stopped while Redis was away: kept to be written when PostgreSQL answers',
      'recorded the lock lapses kept while PostgreSQL was away',
    ]);
    await ledger.close();
  });

  it('counts the kept lapses of the entry asked about, once, whether or not the row can be read', async () => {
    const db = table();
    const ledger = ledgerOver(db);
    await ledger.record([{ jobId: 'a', entryAddedAt: 1 }]);
    db.state.away = true;
    await ledger.record([{ jobId: 'a', entryAddedAt: 1 }, { jobId: 'a', entryAddedAt: 2 }]);

    // The row cannot be read: the kept ones are what is known.
    expect(await ledger.lapsesOf('a', 1)).toBe(1);
    expect(await ledger.lapsesOf('a', 2)).toBe(1);
    // Nothing kept and nothing readable: the caller learns the read failed.
    await expect(ledger.lapsesOf('c', 1)).rejects.toThrow('connection refused');

    // Back: asking writes what is kept first, so a lapse is counted on its row and not again here.
    db.state.away = false;
    expect(await ledger.lapsesOf('a', 1)).toBe(2);
    expect(ledger.unwrittenCount).toBe(0);
    expect(await ledger.lapsesOf('a', 2)).toBe(1);
    await ledger.close();
  });

  it('keeps at most its bound, dropping the oldest', async () => {
    const db = table();
    const ledger = ledgerOver(db, { maxUnwritten: 3 });
    db.state.away = true;
    await ledger.record([1, 2, 3, 4, 5].map((at) => ({ jobId: 'a', entryAddedAt: at })));
    expect(ledger.unwrittenCount).toBe(3);
    db.state.away = false;
    await ledger.close();
    expect([...db.rows.keys()].sort()).toEqual(['a@3', 'a@4', 'a@5']);
  });

  it('stops trying once closed', async () => {
    const db = table();
    const ledger = ledgerOver(db);
    db.state.away = true;
    await ledger.record([{ jobId: 'a', entryAddedAt: 1 }]);
    await ledger.close();
    const writes = db.state.writes;
    db.state.away = false;
    await delay(100);
    expect(db.state.writes).toBe(writes);
    expect(ledger.unwrittenCount).toBe(0);
  });
});
