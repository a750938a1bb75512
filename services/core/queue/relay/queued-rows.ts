import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import { findStaleQueued, type Keyset, type QueueEntryRow } from '../../db/jobs';
import { readEntriesAddedAt, type RedisJobState } from '../job-states';
import type { Enqueuer } from './enqueue';
import { ageSeconds, RedisStatesUnavailableError } from './lag';
import type { LostDeliveries } from './lost-running';
import { withinEnqueueTimeout, type ResolvedRelayOptions } from './options';
import { walkStaleRows } from './stale-walk';

/** Suspects held at most, as a multiple of sweepMaxRows: memory stays bounded whatever Redis lost. */
const SUSPECTS_PER_SWEEP_ROWS = 2;

/**
 * How much earlier than its row's last queuing a crash-looped entry must have been added to
 * count as an earlier run's: the clocks of the processes and of PostgreSQL may differ by this
 * much (platform doctor fails a database clock off by half of it).
 */
const ENTRY_CLOCK_MARGIN_MS = 1_000;

/** What a look at the queued rows found (see SweepReport for each count). */
export interface QueuedLook {
  checked: number;
  passEnded: boolean;
  pending: number;
  requeued: number;
  refused: number;
  abandoned: number;
  lagSeconds: number;
}

/**
 * The sweep's walk over queued rows that Redis should hold. Under load the hand-off is
 * behind, so a row Redis does not hold yet is only noted (a suspect); one missing at two
 * looks in a row, unchanged in between, was lost and is handed over again.
 */
export class QueuedRows {
  /**
   * Queued rows a sweep found missing from Redis, with their updated_at (µs) and the pass
   * that noted them: lost if the next look at them finds them so again, unchanged. A pass
   * is one walk over every stale queued row, one sweep unless the backlog is past sweepMaxRows.
   */
  private readonly suspects = new Map<string, { updatedUs: number; pass: number }>();
  private pass = 0;
  /** Where the next sweep's walk goes on from; undefined: from the oldest row. */
  private passCursor: Keyset | undefined;

  constructor(
    private readonly deps: { generalPool: Pool; connection: Redis; enqueuer: Pick<Enqueuer, 'redisStates' | 'requeue'>; lost: Pick<LostDeliveries, 'settleCrashLooped'> },
    private readonly options: Pick<ResolvedRelayOptions, 'prefix' | 'sweepGraceMs' | 'sweepPageSize' | 'sweepMaxRows' | 'enqueueTimeoutMs'>,
  ) {}

  /**
   * Walks the stale queued rows oldest first, a page at a time, and asks Redis about each.
   * `measure` reads from the oldest row and changes nothing; `repair` goes on from where
   * the last sweep stopped and hands over the rows it finds lost.
   */
  async look(mode: 'repair' | 'measure'): Promise<QueuedLook> {
    let pending = 0;
    let requeued = 0;
    let refused = 0;
    let abandoned = 0;
    let oldestMissingUs = Infinity;
    const { sweepGraceMs, sweepPageSize, sweepMaxRows } = this.options;
    const walk = await walkStaleRows(
      (after) => findStaleQueued(this.deps.generalPool, sweepGraceMs, sweepPageSize, after),
      { pageSize: sweepPageSize, maxRows: sweepMaxRows, from: mode === 'repair' ? this.passCursor : undefined },
      async (rows) => {
        const states = await this.deps.enqueuer.redisStates(rows.map((row) => row.id)).catch((error: unknown) => {
          const knownMissingUs = mode === 'repair' ? this.oldestSuspectUs() : Infinity;
          throw new RedisStatesUnavailableError(Math.min(oldestMissingUs, knownMissingUs, (rows[0] as QueueEntryRow).updated_us), { cause: error });
        });
        for (const row of rows) {
          if (states.get(row.id) === 'held') continue;
          oldestMissingUs = Math.min(oldestMissingUs, row.updated_us);
        }
        if (mode === 'repair') {
          const outcome = await this.repair(rows, states);
          pending += outcome.pending;
          requeued += outcome.requeued;
          refused += outcome.refused;
          abandoned += outcome.abandoned;
        }
      },
    );
    if (mode === 'repair') {
      this.passCursor = walk.next;
      if (walk.walkedToTheEnd) this.endPass();
      // Rows found missing by earlier sweeps of this pass count towards the lag until looked at again.
      oldestMissingUs = Math.min(oldestMissingUs, this.oldestSuspectUs());
    }
    return { checked: walk.checked, passEnded: walk.walkedToTheEnd, pending, requeued, refused, abandoned, lagSeconds: oldestMissingUs === Infinity ? 0 : ageSeconds(oldestMissingUs) };
  }

  /**
   * Notes rows missing for the first time, hands over those missing at two looks in a row, and
   * settles crash loops (see settleCrashLooped). Lost rows Redis refused stay noted, so the
   * next sweep hands them over at once instead of noting them anew.
   */
  private async repair(rows: QueueEntryRow[], states: Map<string, RedisJobState>): Promise<{ pending: number; requeued: number; refused: number; abandoned: number }> {
    const crashLooped: QueueEntryRow[] = [];
    const lost: QueueEntryRow[] = [];
    let pending = 0;
    const leftBehind = await this.entriesOfEarlierRuns(rows.filter((row) => states.get(row.id) === 'crash-looped'));
    for (const row of rows) {
      // An entry left from an earlier run is finished business: the row is as good as missing.
      const state = leftBehind.has(row.id) ? 'finished' : states.get(row.id);
      const suspect = this.suspects.get(row.id);
      this.suspects.delete(row.id);
      if (state === 'held') continue;
      if (state === 'crash-looped') crashLooped.push(row);
      else if (suspect?.updatedUs === row.updated_us) lost.push(row);
      else {
        // Past the bound (Redis lost a backlog several sweeps long) a row is noted on a later pass, once earlier ones are handed over.
        if (this.suspects.size < SUSPECTS_PER_SWEEP_ROWS * this.options.sweepMaxRows) this.suspects.set(row.id, { updatedUs: row.updated_us, pass: this.pass });
        pending += 1;
      }
    }
    const abandoned = await this.deps.lost.settleCrashLooped(crashLooped);
    const requeued = await this.deps.enqueuer.requeue(lost, 'sweep');
    if (requeued < lost.length) for (const row of lost) this.suspects.set(row.id, { updatedUs: row.updated_us, pass: this.pass });
    return { pending, requeued, refused: lost.length - requeued, abandoned };
  }

  /**
   * Of queued rows whose own entry BullMQ gave up on as a crash loop, those whose entry was
   * added well before the row was last queued. Such an entry belongs to a run before the
   * move that queued the row again: a replay whose hand-off Redis did not take (it was away)
   * leaves it behind, since the hand-off is what replaces it. Dead-lettering the row for it
   * would undo the replay without the job ever running. An entry added for the row's current
   * run is added after the commit that queued it; the margin covers the difference between
   * the clock of the process that added it and PostgreSQL's.
   */
  private async entriesOfEarlierRuns(crashLooped: QueueEntryRow[]): Promise<Set<string>> {
    if (crashLooped.length === 0) return new Set();
    const addedAt = await withinEnqueueTimeout(this.options, readEntriesAddedAt(this.deps.connection, this.options.prefix, crashLooped.map((row) => row.id)), 'entry timestamps');
    const earlier = crashLooped.filter((row) => {
      const added = addedAt.get(row.id);
      return added !== undefined && added * 1_000 < row.updated_us - ENTRY_CLOCK_MARGIN_MS * 1_000;
    });
    return new Set(earlier.map((row) => row.id));
  }

  /** A pass walked every stale queued row: suspects it did not note again are no longer queued and stale. */
  private endPass(): void {
    for (const [id, { pass }] of this.suspects) if (pass < this.pass) this.suspects.delete(id);
    this.pass += 1;
  }

  private oldestSuspectUs(): number {
    let oldest = Infinity;
    for (const { updatedUs } of this.suspects.values()) oldest = Math.min(oldest, updatedUs);
    return oldest;
  }
}
