/** A lapse the watch found: the entries whose locks ran out, and whether the worker's own loop stood still meanwhile. */
export interface LockLapse {
  entryIds: string[];
  /**
   * True when, since the entry's lock was last known to be fresh, this process's event loop
   * stood still for more than half a lock in all: a job that blocks its worker (a tight loop,
   * a huge synchronous parse) lets its lock lapse as surely as a crash does. BullMQ asks for
   * a renewal at most half a lock after the last one, so a loop that stood still for less
   * sent it in time, and the lapse was Redis not taking it, even if the loop was slow too.
   */
  loopStood: boolean;
}

export interface LockWatchOptions {
  /** How long a lock lasts once taken or renewed (BullMQ's lockDuration). */
  lockDurationMs: number;
  /** Told of the entries whose locks ran out, at most once per entry per delivery. */
  onLapse: (lapse: LockLapse) => void;
  now?: () => number;
}

/**
 * Knows, without asking Redis, when a lock this worker holds on a queue entry has run out:
 * BullMQ renews the locks of running entries in the background and says only which
 * renewals Redis took ('locksRenewed'). An entry whose lock was last taken or renewed a
 * lock's duration ago has lapsed, whether or not Redis answers now: while Redis is away
 * (paused, restarting, out of reach) the worker learns it at once, before the entry comes
 * back from BullMQ's stalled check, instead of at the first renewal Redis answers again.
 *
 * Each tick also notes how long the loop stood still since the tick before, so a lapse the
 * job brought about by blocking the worker is told from one Redis brought about.
 */
export class LockWatch {
  /** Entries held now, with when their lock was last known to be fresh. */
  private readonly fresh = new Map<string, number>();
  private readonly tickMs: number;
  /** Standing still this long in all since a lock was fresh makes its lapse the loop's (see LockLapse). */
  private readonly loopStoodPastMs: number;
  private readonly now: () => number;
  private lastTickAt: number;
  /** Spells the loop stood still, oldest first, kept for a lock's duration. */
  private stands: { from: number; to: number }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: LockWatchOptions) {
    if (!(options.lockDurationMs > 0)) throw new RangeError('lockDurationMs must be positive');
    this.now = options.now ?? Date.now;
    this.tickMs = Math.min(1_000, options.lockDurationMs / 8);
    this.loopStoodPastMs = options.lockDurationMs / 2;
    this.lastTickAt = this.now();
  }

  start(): void {
    if (this.timer) return;
    this.lastTickAt = this.now();
    this.timer = setInterval(() => this.tick(), this.tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.fresh.clear();
    this.stands = [];
  }

  /** A delivery of this entry began: its lock was just taken. */
  taken(entryId: string): void {
    this.fresh.set(entryId, this.now());
  }

  /** Redis took these renewals. */
  renewed(entryIds: readonly string[]): void {
    const at = this.now();
    for (const entryId of entryIds) if (this.fresh.has(entryId)) this.fresh.set(entryId, at);
  }

  /** The delivery of this entry ended; its lock is no longer ours to keep. */
  released(entryId: string): void {
    this.fresh.delete(entryId);
  }

  /** Finds the locks that ran out since the last tick and reports them, grouped by whether the loop stood still. */
  tick(): void {
    this.noteLoop();
    const now = this.now();
    const byCause: Record<'stood' | 'ran', string[]> = { stood: [], ran: [] };
    for (const [entryId, since] of this.fresh) {
      if (now - since < this.options.lockDurationMs) continue;
      this.fresh.delete(entryId);
      byCause[this.stoodSince(since, now) > this.loopStoodPastMs ? 'stood' : 'ran'].push(entryId);
    }
    if (byCause.ran.length > 0) this.options.onLapse({ entryIds: byCause.ran, loopStood: false });
    if (byCause.stood.length > 0) this.options.onLapse({ entryIds: byCause.stood, loopStood: true });
  }

  /** Notes the time since the last tick beyond the tick's own interval as a spell the loop stood still. */
  private noteLoop(): void {
    const now = this.now();
    const standFrom = this.lastTickAt + this.tickMs;
    if (now > standFrom) this.stands.push({ from: standFrom, to: now });
    this.lastTickAt = now;
    // A lock still held was fresh within its duration, so older spells concern none.
    const keepAfter = now - this.options.lockDurationMs;
    while (this.stands.length > 0 && this.stands[0]!.to <= keepAfter) this.stands.shift();
  }

  /** How long in all the loop stood still between `since` and `now`. */
  private stoodSince(since: number, now: number): number {
    let stood = 0;
    for (const { from, to } of this.stands) stood += Math.max(0, Math.min(to, now) - Math.max(from, since));
    return stood;
  }
}
