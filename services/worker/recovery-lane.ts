import type { Relay } from '../core/queue/relay';

/**
 * How long a redelivered job parked outside a busy recovery lane waits at most. The lane
 * calls the next parked job as soon as it frees; this is for a call that went to another
 * worker, or a lane whose process ended.
 */
export const RECOVERY_LANE_PARK_MS = 5_000;

export interface RecoveryLaneOptions {
  /** Calls a parked entry back: moves it from delayed to the queue at once. */
  relay: Pick<Relay, 'promote'>;
}

/**
 * A job whose runs ended with their worker as many times as a job may (maxStalledCount)
 * may be what killed it, and one more such run dead-letters it. Such jobs (suspects) run one
 * at a time in a process: the lane. The others are parked in `delayed`, outside the active
 * set, so if the suspect kills this worker too, only its own count of interrupted runs goes
 * past the limit, and a crash loop is dead-lettered without taking the jobs that rode along
 * with it before. Jobs with runs to spare run beside everything else: a crash that ends a
 * worker's hundred jobs must not have them run one at a time. When the lane frees, it calls
 * the next parked job back at once: two crashes can leave hundreds of suspects, and a lane
 * that waited for each to come back on its own would take minutes over them.
 *
 * The caller parks and runs the entries; the lane keeps who holds it and who waits.
 */
export class RecoveryLane {
  private busy = false;
  /** Entries parked outside the busy lane by this process, in the order they came. */
  private readonly parked = new Set<string>();

  constructor(private readonly options: RecoveryLaneOptions) {}

  /** Takes the lane for entry `entryId`; false while another suspect holds it (the caller then parks the entry). */
  enter(entryId: string | undefined): boolean {
    if (this.busy) return false;
    this.busy = true;
    if (entryId) this.parked.delete(entryId);
    return true;
  }

  /** Notes an entry the caller parked outside the busy lane, to be called back when the lane frees. */
  park(entryId: string | undefined): void {
    if (entryId) this.parked.add(entryId);
  }

  /** Frees the lane and calls the next parked entry back. */
  leave(): void {
    this.busy = false;
    void this.callNext();
  }

  /** Moves the first parked entry still waiting back to the queue; it takes the lane if it reaches a worker whose lane is free. */
  private async callNext(): Promise<void> {
    for (const entryId of this.parked) {
      if (this.busy) return;
      this.parked.delete(entryId);
      if (await this.options.relay.promote(entryId)) return;
    }
  }
}
