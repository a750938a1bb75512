import { TooManyRequestsError } from '../errors';

/**
 * An owner's small request bodies still arriving, so that a client trickling its bodies in
 * cannot hold an unbounded number of half-read bodies. A body sent with its request arrives
 * within a turn or a few of the event loop, but under load a user's concurrent submits are
 * many at once between their first byte and their parse; so only bodies still arriving after
 * `slowAfterMs` count against the owner, and a new body is refused while `most` of those are.
 */
export class SlowBodies {
  private readonly arriving = new Map<string, Set<{ since: number }>>();

  constructor(
    private readonly most: number,
    private readonly slowAfterMs: number,
    private readonly retryAfterSeconds: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Counts a body of `owner` as arriving until the function given back is called; throws
   * TooManyRequestsError when the owner already has `most` bodies arriving for longer than
   * slowAfterMs.
   */
  start(owner: string): () => void {
    let started = this.arriving.get(owner);
    if (!started) {
      started = new Set();
      this.arriving.set(owner, started);
    } else if (started.size >= this.most && this.slowCount(started) >= this.most) {
      throw new TooManyRequestsError(
        `${this.most} request bodies of this user have been arriving for over ${this.slowAfterMs / 1_000} s; send a body with its request, or let one finish first.`,
        this.retryAfterSeconds,
      );
    }
    const body = { since: this.now() };
    started.add(body);
    const set = started;
    return () => {
      if (!set.delete(body) || set.size > 0) return;
      if (this.arriving.get(owner) === set) this.arriving.delete(owner);
    };
  }

  private slowCount(started: Set<{ since: number }>): number {
    const before = this.now() - this.slowAfterMs;
    let slow = 0;
    for (const body of started) if (body.since < before) slow += 1;
    return slow;
  }
}
