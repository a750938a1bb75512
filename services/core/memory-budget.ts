/** What a budget holds and how many wait for room, after every change. */
export type MemoryBudgetObserver = (state: { held: number; waiting: number }) => void;

interface Waiter {
  bytes: number;
  /** Arrival order, which breaks ties between owners who were served equally recently. */
  arrival: number;
  grant: () => void;
}

/** One owner's requests at a budget: those waiting, in their order, and what the owner holds. */
interface OwnerLine {
  waiting: Waiter[];
  heldBytes: number;
  /** When the owner was last let in (a count of grants); 0 for an owner not let in while it had a line here. */
  lastServed: number;
}

/**
 * Bytes of memory one process lets the work of many owners hold at once for one kind of
 * need, so that many of them together cannot take more memory than the process has: in a
 * worker, large job inputs or what file jobs hold that grows with their file; in the API,
 * large request bodies on their way to PostgreSQL. Work waits here for room before it takes
 * on what it reserves. Owners take turns: the next in line is the first waiting request of
 * the owner let in longest ago, so one owner's backlog does not make another owner wait for
 * all of it. The next in line is never overtaken, so a request larger than what is free gets
 * its room as others end; one larger than the whole budget is let in alone.
 */
export class MemoryBudget {
  private heldBytes = 0;
  private waitingRequests = 0;
  private arrivals = 0;
  private grants = 0;
  /** Owners with a request waiting or holding bytes; an owner with neither is forgotten. */
  private readonly owners = new Map<string, OwnerLine>();

  constructor(
    readonly capacityBytes: number,
    private readonly observe: MemoryBudgetObserver = () => undefined,
  ) {
    if (!Number.isInteger(capacityBytes) || capacityBytes < 1) throw new RangeError('a memory budget must be a positive number of bytes');
  }

  /** Bytes held now by requests that were let in. */
  get held(): number {
    return this.heldBytes;
  }

  /** Requests waiting now for room. */
  get waiting(): number {
    return this.waitingRequests;
  }

  /** Whether `bytes` asked for now by `owner` would wait: another owner's request is next in line, the owner's own wait before it, or it does not fit beside what is held. */
  wouldWait(bytes: number, owner: string): boolean {
    const line = this.owners.get(owner);
    if (line && line.waiting.length > 0) return true;
    const next = this.nextInLine();
    if (next && next.line.lastServed <= (line?.lastServed ?? 0)) return true;
    return !this.fits(bytes);
  }

  /**
   * Resolves once `bytes` may be held by `owner`; the function it gives back hands them back
   * (once, however often it is called). When `signal` aborts first, the wait ends: the
   * request leaves the line without holding anything, and rejects with the signal's reason.
   */
  acquire(bytes: number, owner: string, signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    return new Promise((resolve, reject) => {
      const line = this.lineOf(owner);
      const onAbort = () => {
        const index = line.waiting.indexOf(waiter);
        if (index === -1) return;
        line.waiting.splice(index, 1);
        this.waitingRequests -= 1;
        this.forgetIfIdle(owner, line);
        reject(signal?.reason as Error);
        // Those behind it may fit now that it is out of the way.
        this.admit();
      };
      const waiter: Waiter = {
        bytes,
        arrival: (this.arrivals += 1),
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.releaser(owner, line, bytes));
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      line.waiting.push(waiter);
      this.waitingRequests += 1;
      this.admit();
    });
  }

  private lineOf(owner: string): OwnerLine {
    let line = this.owners.get(owner);
    if (!line) {
      line = { waiting: [], heldBytes: 0, lastServed: 0 };
      this.owners.set(owner, line);
    }
    return line;
  }

  /** An owner with nothing held and nothing waiting is forgotten, its turn with it. */
  private forgetIfIdle(owner: string, line: OwnerLine): void {
    if (line.heldBytes === 0 && line.waiting.length === 0) this.owners.delete(owner);
  }

  private releaser(owner: string, line: OwnerLine, bytes: number): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.heldBytes -= bytes;
      line.heldBytes -= bytes;
      this.forgetIfIdle(owner, line);
      this.admit();
    };
  }

  /** Room beside what is held; when nothing is, any amount fits (the first in line would otherwise wait forever). */
  private fits(bytes: number): boolean {
    return this.heldBytes === 0 || this.heldBytes + bytes <= this.capacityBytes;
  }

  /** The owner whose turn it is: let in longest ago (never first), then the earliest arrival. */
  private nextInLine(): { line: OwnerLine; waiter: Waiter } | undefined {
    let next: { line: OwnerLine; waiter: Waiter } | undefined;
    for (const line of this.owners.values()) {
      const waiter = line.waiting[0];
      if (!waiter) continue;
      if (!next || line.lastServed < next.line.lastServed || (line.lastServed === next.line.lastServed && waiter.arrival < next.waiter.arrival)) next = { line, waiter };
    }
    return next;
  }

  /** Lets in the next in line while it fits; when it needs more than the whole budget, everyone waits for the budget to empty. */
  private admit(): void {
    for (let next = this.nextInLine(); next && this.fits(next.waiter.bytes); next = this.nextInLine()) {
      next.line.waiting.shift();
      this.waitingRequests -= 1;
      this.heldBytes += next.waiter.bytes;
      next.line.heldBytes += next.waiter.bytes;
      next.line.lastServed = this.grants += 1;
      next.waiter.grant();
    }
    this.observe({ held: this.heldBytes, waiting: this.waitingRequests });
  }
}
