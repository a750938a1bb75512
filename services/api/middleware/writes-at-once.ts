import { TooManyRequestsError } from '../errors';

/** How long a client refused a slot waits before asking again: such a write takes a second or a few. */
const RETRY_AFTER_SECONDS = 1;

/**
 * The job writes whose cost grows with a fan-out job's tasks (submitting a fan-out, and
 * cancelling, retrying or deleting a job, which act on all its tasks) that one user runs at
 * once in one API process. One such write on a job of 10,000 tasks holds a PostgreSQL
 * connection for seconds, so a user looping cancel and retry over a few of them took the
 * process's pool from everyone else (other users' submits waited seconds). One more than
 * `max` is answered 429 with Retry-After before it touches the database.
 *
 * A slot is held until the write ends, not until its client leaves: a client that hangs up
 * does not free it while the work it started still runs.
 */
export class WritesAtOnce {
  private readonly held = new Map<string, number>();

  constructor(private readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`max must be a whole number of 1 or more, not ${max}`);
  }

  async run<T>(userId: string, write: () => Promise<T>): Promise<T> {
    const holding = this.held.get(userId) ?? 0;
    if (holding >= this.max) {
      throw new TooManyRequestsError(
        `At most ${this.max} submits of fan-out jobs, cancels, retries and deletes of one user run at once on this server (JOB_WRITES_AT_ONCE_PER_USER); try again after Retry-After.`,
        RETRY_AFTER_SECONDS,
      );
    }
    this.held.set(userId, holding + 1);
    try {
      return await write();
    } finally {
      const left = (this.held.get(userId) ?? 1) - 1;
      if (left === 0) this.held.delete(userId);
      else this.held.set(userId, left);
    }
  }
}
