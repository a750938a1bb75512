import { placesPerOwner } from '../at-once';

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
  private readonly take: (userId: string) => () => void;

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`max must be a whole number of 1 or more, not ${max}`);
    this.take = placesPerOwner(
      max,
      `At most ${max} submits of fan-out jobs, cancels, retries and deletes of one user run at once on this server (JOB_WRITES_AT_ONCE_PER_USER); try again after Retry-After.`,
      RETRY_AFTER_SECONDS,
    );
  }

  async run<T>(userId: string, write: () => Promise<T>): Promise<T> {
    const release = this.take(userId);
    try {
      return await write();
    } finally {
      release();
    }
  }
}
