/**
 * The bytes of large job inputs one worker holds at once. While a job runs, its input, its
 * result and their copies on the way to PostgreSQL cost a few times the input's size, and
 * WORKER_CONCURRENCY slots of shared entries (ten echo jobs each) would otherwise let a
 * backlog of 1 MiB inputs take gigabytes. A job with a large input waits here before its
 * input is read, first come first served; one larger than the whole budget runs alone.
 */
export class InputBudget {
  private heldBytes = 0;
  private readonly waiting: { bytes: number; grant: () => void }[] = [];

  constructor(readonly capacityBytes: number) {
    if (!Number.isInteger(capacityBytes) || capacityBytes < 1) throw new RangeError('the input budget must be a positive number of bytes');
  }

  /** Bytes held now by jobs that were let in. */
  get held(): number {
    return this.heldBytes;
  }

  /** Resolves once `bytes` may be held; the function it gives back hands them back (once, however often it is called). */
  acquire(bytes: number): Promise<() => void> {
    return new Promise((resolve) => {
      this.waiting.push({ bytes, grant: () => resolve(this.releaser(bytes)) });
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

  /** Lets in waiting jobs in order while they fit; the first in line waits for the budget to empty when it needs more than it all. */
  private admit(): void {
    for (let next = this.waiting[0]; next; next = this.waiting[0]) {
      if (this.heldBytes > 0 && this.heldBytes + next.bytes > this.capacityBytes) return;
      this.waiting.shift();
      this.heldBytes += next.bytes;
      next.grant();
    }
  }
}
