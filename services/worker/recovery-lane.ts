import type { Logger } from '../core/logger';
import type { Relay } from '../core/queue/relay';

/**
 * How long an entry parked outside a busy recovery lane waits at most. The lane calls parked
 * entries back as soon as it frees; this is for a call that went to another worker, or a
 * lane whose process ended.
 */
export const RECOVERY_LANE_PARK_MS = 5_000;

/** How often a suspect that waited tries again to take its excuse back while PostgreSQL refuses. */
export const EXCUSE_WITHDRAW_RETRY_MS = 1_000;

/** The entry of a suspect asking to run alone: its job, and when the entry was added. */
export interface SuspectEntry {
  jobId: string;
  /** When BullMQ added the entry: the runs excused are the entry's (jobs.lock_lapses_entry). */
  entryAddedAt: number;
}

/** Why a suspect may not run now: `later`, it is to be parked and run later (also when the worker is stopping); `lost`, its entry is no longer this worker's. */
export type NotNow = 'later' | 'lost';

/**
 * Why a suspect did not run: as NotNow, or `lapsing`: its entry is to be left as it is, its
 * lock to lapse with this stopping worker, as the excuse that could not be taken back from
 * the job's row stands for that run.
 */
export type NotRun = NotNow | 'lapsing';

export type AloneOutcome<T> = { ran: true; value: T } | { ran: false; why: NotRun };

export interface RecoveryLaneOptions {
  /** Calls a parked entry back: moves it from delayed to the queue at once. */
  relay: Pick<Relay, 'promote'>;
  /**
   * Runs of a job that end with their worker without being the job's doing, on its row
   * (jobs.lock_lapses): a suspect waiting for its turn has one recorded in advance, taken
   * back before it runs.
   */
  excusedRuns: {
    record(jobId: string, entryAddedAt: number): Promise<void>;
    /** Takes back one recorded for that entry. */
    withdraw(jobId: string, entryAddedAt: number): Promise<void>;
  };
  /** Entries running in this process besides the suspect's own. */
  othersRunning: () => number;
  /** Whether BullMQ may fetch more entries for this process: false while a suspect runs alone. */
  fetching: (allowed: boolean) => void;
  log: Logger;
}

/**
 * A job whose runs ended with their worker as many times as a job may (maxStalledCount) may
 * be what killed it, and one more such run dead-letters it. Such a job (a suspect) runs
 * alone in its process: if it kills this worker too, the run is charged to it and to no
 * other job, and if another job kills the worker, that is not charged to it. The lane:
 * - takes one suspect at a time; the others are parked in `delayed`, outside the active set,
 *   and called back one by one as the lane frees (two crashes can leave hundreds of
 *   suspects, and a lane that waited for each to come back on its own would take minutes);
 * - stops BullMQ fetching for this process while a suspect holds it, and parks the entries
 *   a fetch already under way brings meanwhile, calling them all back when it frees;
 * - lets the suspect wait, its entry held, for the jobs already running here to finish. A
 *   run of the suspect's that ends with the worker while it waits is excused in advance
 *   on the job's row, and the excuse is taken back before it runs.
 * Jobs with runs to spare run beside each other: a crash that ends a worker's hundred jobs
 * must not have them run one at a time.
 */
export class RecoveryLane {
  private busy = false;
  /** Suspects parked outside the busy lane by this process, in the order they came. */
  private readonly parked = new Set<string>();
  /** Entries that are no suspects, parked while a suspect held the lane. */
  private readonly heldBack = new Set<string>();
  private othersEnded: (() => void) | undefined;
  /** The suspect whose wait is excused on its row now (recorded, and no withdrawal under way or done). */
  private excused: SuspectEntry | undefined;

  constructor(private readonly options: RecoveryLaneOptions) {}

  /** Whether a suspect holds the lane: no other entry starts in this process meanwhile. */
  get isHeld(): boolean {
    return this.busy;
  }

  /** Takes the lane for entry `entryId`; false while another suspect holds it (the caller then parks the entry). */
  enter(entryId: string | undefined): boolean {
    if (this.busy) return false;
    this.busy = true;
    if (entryId) this.parked.delete(entryId);
    this.options.fetching(false);
    return true;
  }

  /**
   * Notes a suspect the caller parked outside the busy lane, to be called back when the lane
   * frees. The caller parks the entry in Redis first and notes it after, so the lane may have
   * freed in between, its leave() missing the entry: a lane found free calls the next suspect
   * back at once.
   */
  park(entryId: string | undefined): void {
    if (!entryId) return;
    this.parked.add(entryId);
    if (!this.busy) void this.callNextSuspect();
  }

  /** Notes an entry that is no suspect, parked because a suspect held the lane: called back when it frees, or at once when it freed already (see park). */
  holdBack(entryId: string | undefined): void {
    if (!entryId) return;
    if (this.busy) this.heldBack.add(entryId);
    else void this.options.relay.promote(entryId).catch(() => false);
  }

  /**
   * Whether the run of this entry is excused on its job's row already: the suspect waiting in
   * the lane, whose excuse stays when its entry is lost (see runAlone). A lock lapse of that
   * entry is not to be recorded a second time.
   */
  excuses(entry: SuspectEntry): boolean {
    return this.excused?.jobId === entry.jobId && this.excused.entryAddedAt === entry.entryAddedAt;
  }

  /** Says an entry running here ended: a suspect waiting for the others looks again. */
  entryEnded(): void {
    this.othersEnded?.();
  }

  /**
   * Runs `run` for the suspect holding the lane once no other entry runs in this process,
   * unless `notNow` says why not by then. When others run, the wait is excused in advance
   * (when that cannot be recorded, PostgreSQL being away, the suspect runs `later`), and the
   * excuse is taken back before it runs (see withdrawExcuse).
   */
  async runAlone<T>(suspect: SuspectEntry, notNow: () => NotNow | undefined, run: () => Promise<T>): Promise<AloneOutcome<T>> {
    const others = this.options.othersRunning();
    if (others > 0) {
      const { log, excusedRuns } = this.options;
      const { jobId, entryAddedAt } = suspect;
      try {
        await excusedRuns.record(jobId, entryAddedAt);
      } catch (error) {
        log.warn({ err: error, jobId }, 'a job on its last chance could not have its wait excused: it runs later');
        return { ran: false, why: 'later' };
      }
      this.excused = suspect;
      try {
        log.info({ jobId, others }, 'a job on its last chance waits for the jobs running beside it to finish, to run alone (should this worker end meanwhile, that is not charged to it)');
        await this.untilOthersEnded();
        const excuseStays = await this.withdrawExcuse(suspect, notNow);
        if (excuseStays) return { ran: false, why: excuseStays };
      } finally {
        this.excused = undefined;
      }
    }
    const why = notNow();
    if (why) return { ran: false, why };
    return { ran: true, value: await run() };
  }

  /**
   * Takes back the excuse of a suspect that waited, trying again every
   * EXCUSE_WITHDRAW_RETRY_MS while PostgreSQL refuses, the suspect keeping the lane meanwhile:
   * an excuse left on the row would spare one later run of the entry that really ends with its
   * worker, and the job would be counted below its last chance, to run beside others once
   * more. The excuse stays only where it stands for a run of this delivery that ends without
   * the suspect having run, which is then not the suspect's doing:
   * - `lost`: its lock is gone (lapsed or taken), and the entry's next delivery counts one
   *   more run that ended with its worker. The runner records no lapse of its own for it
   *   (see excuses()), so that run is excused once. (Lost while a withdrawal is under way, the
   *   lapse is recorded as any other, and were that withdrawal refused, the run would be
   *   excused twice: the narrow window in which the job may get one run more.)
   * - `lapsing`: the worker stops while PostgreSQL refuses. Parking the entry would end this
   *   delivery without such a run and leave the excuse to a later, real one; the entry is left
   *   to lapse with the worker instead, the one run the excuse stands for.
   * Answers undefined once the excuse is taken back.
   */
  private async withdrawExcuse(suspect: SuspectEntry, notNow: () => NotNow | undefined): Promise<'lost' | 'lapsing' | undefined> {
    const { log, excusedRuns } = this.options;
    const { jobId, entryAddedAt } = suspect;
    for (let refused = 0; ; refused += 1) {
      if (notNow() === 'lost') return 'lost';
      this.excused = undefined;
      try {
        await excusedRuns.withdraw(jobId, entryAddedAt);
        if (refused > 0) log.info({ jobId, refused }, 'took back the excuse of a job on its last chance that waited to run alone');
        return undefined;
      } catch (error) {
        this.excused = suspect;
        const why = notNow();
        if (why === 'lost') return 'lost';
        if (why === 'later') {
          log.warn({ err: error, jobId }, 'the worker stops while the excuse of a job on its last chance cannot be taken back: its entry is left to lapse with the worker, the run that excuse stands for');
          return 'lapsing';
        }
        if (refused === 0) log.warn({ err: error, jobId }, 'could not take back the excuse of a job on its last chance that waited to run alone: it keeps the lane and tries again every second');
      }
      await new Promise((resolve) => setTimeout(resolve, EXCUSE_WITHDRAW_RETRY_MS));
    }
  }

  /** Frees the lane, lets BullMQ fetch again, and calls parked entries back: every one held back, and the next suspect. */
  leave(): void {
    this.busy = false;
    this.options.fetching(true);
    for (const entryId of this.heldBack) void this.options.relay.promote(entryId).catch(() => false);
    this.heldBack.clear();
    void this.callNextSuspect();
  }

  private untilOthersEnded(): Promise<void> {
    return new Promise((resolve) => {
      const look = () => {
        if (this.options.othersRunning() > 0) return;
        this.othersEnded = undefined;
        resolve();
      };
      this.othersEnded = look;
      look();
    });
  }

  /** Moves the first parked suspect still waiting back to the queue; it takes the lane if it reaches a worker whose lane is free. */
  private async callNextSuspect(): Promise<void> {
    for (const entryId of this.parked) {
      if (this.busy) return;
      this.parked.delete(entryId);
      if (await this.options.relay.promote(entryId).catch(() => false)) return;
    }
  }
}
