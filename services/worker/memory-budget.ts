import type { MemoryBudgetName } from '../contract';
import type { Metrics } from '../core/metrics';

/** What a budget holds and how many wait for room, after every change. */
export type MemoryBudgetObserver = (state: { held: number; waiting: number }) => void;

/**
 * Bytes of memory one worker lets its jobs hold at once for one kind of need, so that
 * WORKER_CONCURRENCY slots cannot together take more memory than the worker has: large job
 * inputs (their input, result and copies on the way to PostgreSQL cost a few times the
 * input's size), or what file jobs hold that grows with their file. A job waits here for
 * room before it takes on what it reserves, first come first served; one larger than the
 * whole budget runs alone.
 */
export class MemoryBudget {
  private heldBytes = 0;
  private readonly queue: { bytes: number; grant: () => void }[] = [];

  constructor(
    readonly capacityBytes: number,
    private readonly observe: MemoryBudgetObserver = () => undefined,
  ) {
    if (!Number.isInteger(capacityBytes) || capacityBytes < 1) throw new RangeError('a memory budget must be a positive number of bytes');
  }

  /** Bytes held now by jobs that were let in. */
  get held(): number {
    return this.heldBytes;
  }

  /** Jobs waiting now for room. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Whether `bytes` asked for now would wait: others are in line first, or it does not fit beside what is held. */
  wouldWait(bytes: number): boolean {
    return this.queue.length > 0 || !this.fits(bytes);
  }

  /** Resolves once `bytes` may be held; the function it gives back hands them back (once, however often it is called). */
  acquire(bytes: number): Promise<() => void> {
    return new Promise((resolve) => {
      this.queue.push({ bytes, grant: () => resolve(this.releaser(bytes)) });
      this.admit();
    });
  }

  private releaser(bytes: number): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.heldBytes -= bytes;
      this.admit();
    };
  }

  /** Room beside what is held; when nothing is, any amount fits (the first in line would otherwise wait forever). */
  private fits(bytes: number): boolean {
    return this.heldBytes === 0 || this.heldBytes + bytes <= this.capacityBytes;
  }

  /** Lets in waiting jobs in order while they fit; the first in line waits for the budget to empty when it needs more than it all. */
  private admit(): void {
    for (let next = this.queue[0]; next && this.fits(next.bytes); next = this.queue[0]) {
      this.queue.shift();
      this.heldBytes += next.bytes;
      next.grant();
    }
    this.observe({ held: this.heldBytes, waiting: this.queue.length });
  }
}

/** A budget whose capacity, held bytes and waiting jobs the worker's metrics export under `budget`. */
export function observedMemoryBudget(budget: MemoryBudgetName, capacityBytes: number, metrics: Metrics | undefined): MemoryBudget {
  metrics?.workerMemoryBudget.set({ budget }, capacityBytes);
  const observe: MemoryBudgetObserver = ({ held, waiting }) => {
    metrics?.workerMemoryHeld.set({ budget }, held);
    metrics?.workerMemoryWaiting.set({ budget }, waiting);
  };
  observe({ held: 0, waiting: 0 });
  return new MemoryBudget(capacityBytes, observe);
}
