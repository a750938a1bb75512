import type { Logger } from '../core/logger';
import type { SlotHolder, WorkerSlots } from '../core/queue/worker-slots';

/**
 * This process's hold on its WORKER_SLOT (see WorkerSlots): claimed as the worker starts,
 * before its first stalled check, so that check moves what the claim released; looked at
 * and written again by SlotCheck while it runs; left at a clean stop, which leaves nothing
 * running for the next process in the slot to release.
 */
export class SlotHolding {
  /** The slot this process claimed, and what it recorded there. */
  private claimed: { slot: string; holder: SlotHolder; slots: WorkerSlots } | undefined;

  constructor(private readonly log: Logger) {}

  /** Claims `slot` for `holder`, releasing the jobs the previous process there left running; says in the log what it found. */
  async claim(slots: WorkerSlots, slot: string, holder: SlotHolder): Promise<void> {
    const claim = await slots.claim(slot, holder);
    const { predecessor, released } = claim;
    if (!claim.taken) {
      this.log.error(
        { slot, holder: predecessor?.workerId },
        'another worker process holds this worker slot and is still connected to Redis: this worker runs without a slot and releases none of its jobs; give each worker a WORKER_SLOT of its own (a pod uid), or none',
      );
      return;
    }
    this.claimed = { slot, holder, slots };
    if (claim.livenessUnknown !== undefined) {
      this.log.warn({ slot, predecessor: predecessor?.workerId, reason: claim.livenessUnknown }, 'Redis would not list its clients, so the previous worker in this slot is taken to have ended, as the slot promises');
    }
    if (predecessor) {
      this.log.info(
        { slot, predecessor: predecessor.workerId, released },
        released > 0
          ? `released ${released} queue ${released === 1 ? 'entry' : 'entries'} the previous worker in this slot left running (and any whose lock had lapsed): they run again at once, not after their locks lapse and BullMQ's stalled checks find them`
          : 'the previous worker in this slot left no running entries',
      );
    } else if (claim.unreadablePredecessor) {
      this.log.warn({ slot }, 'the worker slot held a record this version cannot read: its jobs wait for their locks to lapse');
    }
  }

  /**
   * Whether this process still holds its slot: false when another process claimed it since
   * (two workers configured with one WORKER_SLOT), undefined without a slot.
   */
  async holds(): Promise<{ held: boolean; holder?: SlotHolder } | undefined> {
    if (!this.claimed) return undefined;
    const holder = await this.claimed.slots.holder(this.claimed.slot);
    return { held: holder?.workerId === this.claimed.holder.workerId, ...(holder ? { holder } : {}) };
  }

  /**
   * Writes this process's record into its slot again when the slot is empty: Redis lost it
   * (restarted empty, failed over), and without it the next process in the slot would not
   * know whose jobs to release after a crash of this one. Answers whether it did.
   */
  async restore(): Promise<boolean> {
    if (!this.claimed) return false;
    const { slot, holder, slots } = this.claimed;
    if (await slots.recorded(slot)) return false;
    // The claim writes only while the slot is still empty, and then releases nothing.
    const claim = await slots.claim(slot, holder);
    return claim.taken && !claim.predecessor;
  }

  /** Leaves the slot after a clean stop. */
  async leave(): Promise<void> {
    if (this.claimed) await this.claimed.slots.leave(this.claimed.slot, this.claimed.holder);
  }
}
