import type { Redis } from 'ioredis';
import type { Logger } from '../core/logger';
import { OutageLog } from '../core/outage-log';
import type { Metrics } from '../core/metrics';
import type { Relay } from '../core/queue/relay';
import { UserShares } from '../core/queue/user-shares';

/**
 * How long a held entry waits before it looks for a share again, unless a share of its
 * user frees first and calls it back: at least HELD_ENTRY_DELAY_MS, longer for a long line
 * (see heldEntryDelayMs). The delay only bounds the wait when a call-back is lost (its
 * worker died, the entry was not yet delayed when called); call-backs keep the line moving.
 */
export const HELD_ENTRY_DELAY_MS = 10_000;
/** The longest a held entry waits for a call-back before it looks again. */
export const HELD_ENTRY_MAX_DELAY_MS = 60 * 60_000;
/**
 * Held entries of one user that come back on their own per second, at most (until the
 * longest delay): each comes back to a delivery read and a script call, so a line of a
 * million held jobs must not come back every 10 s. Spread over the line, they still come
 * back often enough to use a share whose call-back was lost.
 */
const HELD_RETURNS_PER_SECOND = 10;

/** How long a share outlives the last renewal from its worker: the longest a dead worker's shares stay taken. */
const SHARE_LEASE_MS = 30_000;
const RENEW_EVERY_MS = SHARE_LEASE_MS / 3;
/** Held entries one freed share tries in turn, until one is still delayed to be called back (others left the line: run, cancelled). */
const CALL_BACK_TRIES = 3;

/** How long an entry held behind `waiting` entries of its user's waits before it looks again. */
export function heldEntryDelayMs(waiting: number): number {
  return Math.min(HELD_ENTRY_MAX_DELAY_MS, Math.max(HELD_ENTRY_DELAY_MS, Math.ceil((waiting * 1_000) / HELD_RETURNS_PER_SECOND)));
}

/** A share this process holds for a job's run; release() once its outcome is written. */
export interface HeldShare {
  release(): void;
}

/** A share for the job's run, or how long its entry waits in its user's line unless called back first. */
export type ShareOrWait = { share: HeldShare } | { waitMs: number };

export interface FairShareOptions {
  /** The Redis connection the shares are counted on (the runner's, once it started). */
  connection: () => Redis;
  prefix: string;
  /** Jobs of one user that run at once across every worker (JOBS_RUNNING_PER_USER). */
  perUser: number;
  /** Calls a held entry back from its delay when its user's share frees. */
  relay: Pick<Relay, 'promote'>;
  log: Logger;
  metrics?: Metrics;
}

/**
 * Keeps one user from taking every worker's slots: a job in an entry of its own runs only
 * when its user holds a share (see UserShares), else its entry is held: delayed, and
 * called back as soon as one of that user's jobs ends. Other users' jobs take the slots
 * meanwhile. Shared entries carry jobs that run in well under a millisecond, so they hold
 * no slot long enough to share out and run without one.
 *
 * When Redis cannot count, the job runs: the queue it came from is on that same Redis, so
 * this is a moment, and a job never waits on the count's account.
 */
export class FairShare {
  private shares: UserShares | undefined;
  /** Shares held here, by `owner/job`: how many deliveries of that job hold it (a job may be delivered twice at once). */
  private readonly held = new Map<string, { ownerId: string; jobId: string; deliveries: number }>();
  private renewal: NodeJS.Timeout | undefined;
  /** While Redis is away every renewal fails, one every RENEW_EVERY_MS: said once an outage (see OutageLog). */
  private readonly renewalFailures: OutageLog;

  constructor(private readonly options: FairShareOptions) {
    if (!Number.isInteger(options.perUser) || options.perUser < 1) throw new RangeError('perUser must be a positive integer');
    this.renewalFailures = new OutageLog(options.log, {
      firstFailure: 'could not renew the shares of running jobs; they lapse unless a renewal succeeds (further failures are counted until one does)',
      laterFailure: 'could not renew the shares of running jobs',
      recovered: 'the shares of running jobs are renewed again',
      countField: 'failedRenewals',
    });
  }

  /** A share for the job's run; when its user holds all theirs, the entry is in the user's line and waits. */
  async take(ownerId: string, jobId: string, type: string): Promise<ShareOrWait> {
    try {
      const waiting = await this.userShares().take(ownerId, jobId);
      if (waiting > 0) {
        this.options.metrics?.jobsHeld.inc({ type });
        return { waitMs: heldEntryDelayMs(waiting) };
      }
    } catch (error) {
      this.options.log.warn({ err: error, jobId }, 'could not count the user\'s running jobs; the job runs');
      return { share: { release: () => undefined } };
    }
    this.hold(ownerId, jobId);
    let released = false;
    return {
      share: {
        release: () => {
          if (released) return;
          released = true;
          this.letGo(ownerId, jobId);
        },
      },
    };
  }

  /** Stops renewing: what this process still holds lapses with its lease. */
  close(): void {
    if (this.renewal) clearInterval(this.renewal);
    this.renewal = undefined;
  }

  private userShares(): UserShares {
    this.shares ??= new UserShares(this.options.connection(), this.options.prefix, {
      perUser: this.options.perUser,
      leaseMs: SHARE_LEASE_MS,
      heldTtlMs: HELD_ENTRY_MAX_DELAY_MS * 2,
    });
    return this.shares;
  }

  private hold(ownerId: string, jobId: string): void {
    const key = `${ownerId}/${jobId}`;
    const share = this.held.get(key);
    if (share) share.deliveries += 1;
    else this.held.set(key, { ownerId, jobId, deliveries: 1 });
    if (!this.renewal) {
      this.renewal = setInterval(() => void this.renew(), RENEW_EVERY_MS);
      this.renewal.unref();
    }
  }

  private letGo(ownerId: string, jobId: string): void {
    const key = `${ownerId}/${jobId}`;
    const share = this.held.get(key);
    if (share && share.deliveries > 1) {
      share.deliveries -= 1;
      return;
    }
    this.held.delete(key);
    if (this.held.size === 0) this.close();
    void this.freeAndCallBack(ownerId, jobId);
  }

  private async freeAndCallBack(ownerId: string, jobId: string): Promise<void> {
    try {
      const shares = this.userShares();
      let next = await shares.release(ownerId, jobId);
      for (let tries = 1; next !== undefined; tries += 1) {
        if ((await this.options.relay.promote(next)) || tries === CALL_BACK_TRIES) return;
        next = await shares.nextHeld(ownerId);
      }
    } catch (error) {
      this.options.log.debug({ err: error, jobId }, 'could not free a share; it lapses with its lease');
    }
  }

  private async renew(): Promise<void> {
    try {
      await this.userShares().renew([...this.held.values()]);
    } catch (error) {
      this.renewalFailures.failed(error, { shares: this.held.size });
      return;
    }
    this.renewalFailures.succeeded();
  }
}
