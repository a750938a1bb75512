import type { Redis } from 'ioredis';
import { RateLimiterRes } from 'rate-limiter-flexible';
import type { SecurityEvents } from '../../core/auth';
import type { Logger } from '../../core/logger';
import { createLimiter, tooManyRequests, type Limiter } from './rate-limit';

/** Failures count within this window. */
const FAILURE_WINDOW_SECONDS = 15 * 60;
/** Lockouts count within a day: each one doubles the next. */
const LOCKOUT_MEMORY_SECONDS = 24 * 3600;
const MAX_LOCKOUT_SECONDS = 24 * 3600;
/** An address an account signed in from stays known this long after its last sign-in there. */
const KNOWN_ADDRESS_SECONDS = 30 * 24 * 3600;

export interface AccountLockoutOptions {
  redis?: Redis;
  prefix: string;
  /** Failed logins of one account from one client address before that address is locked out of it. */
  failuresBeforeLockout: number;
  /** Failed logins of one account from all addresses together before it is locked for addresses it never signed in from. */
  accountFailuresBeforeLockout: number;
  lockoutSeconds: number;
  security: SecurityEvents;
}

/** What a lock covers: one account from one address, or one account from every address it never signed in from. */
type Scope = 'address' | 'account';

/**
 * Login lockout with backoff, kept so that an attacker who knows a victim's email cannot
 * lock the victim out:
 * - per account and client address (IPv6 by /64): `failuresBeforeLockout` failures lock that
 *   address out of that account for `lockoutSeconds`, doubled for each further lockout that
 *   day (up to a day). Guessing from one address is slow; other addresses are untouched.
 * - per account, from all addresses together: `accountFailuresBeforeLockout` failures (a
 *   credential-stuffing run spread over many addresses) lock the account, with the same
 *   backoff, for every address it has not signed in from within KNOWN_ADDRESS_SECONDS. Its
 *   owner signs in from home or the office as usual, and anywhere else after a password reset.
 * Counted for any email, existing or not, so a lockout tells nothing about which accounts exist.
 */
export class AccountLockout {
  private readonly failures: Record<Scope, Limiter>;
  private readonly lockouts: Limiter;
  private readonly known: Limiter;

  constructor(private readonly options: AccountLockoutOptions) {
    const failures = (scope: Scope, points: number) =>
      createLimiter({ redis: options.redis, keyPrefix: `${options.prefix}:rl:login-failures:${scope}`, points, durationSeconds: FAILURE_WINDOW_SECONDS });
    this.failures = { address: failures('address', options.failuresBeforeLockout), account: failures('account', options.accountFailuresBeforeLockout) };
    this.lockouts = createLimiter({ redis: options.redis, keyPrefix: `${options.prefix}:rl:lockouts`, points: 1_000_000, durationSeconds: LOCKOUT_MEMORY_SECONDS });
    this.known = createLimiter({ redis: options.redis, keyPrefix: `${options.prefix}:login-known-address`, points: 1, durationSeconds: KNOWN_ADDRESS_SECONDS });
  }

  /** Throws a 429 while this address is locked out of the account. `address` is the clientAddressKey, `log` the request's. */
  async assertOpen(account: string, address: string, log: Logger): Promise<void> {
    const pair = await this.guard(log, () => this.failures.address.get(pairKey(account, address)));
    if (this.isLocked(pair, this.options.failuresBeforeLockout)) {
      throw tooManyRequests(pair, this.options.failuresBeforeLockout, 'too many failed logins for this account from this address: locked for now; see Retry-After');
    }
    const whole = await this.guard(log, () => this.failures.account.get(account));
    if (this.isLocked(whole, this.options.accountFailuresBeforeLockout) && !(await this.isKnown(account, address, log))) {
      throw tooManyRequests(
        whole,
        this.options.accountFailuresBeforeLockout,
        'too many failed logins for this account: locked for now for addresses it has not signed in from; see Retry-After, or reset the password',
      );
    }
  }

  async recordFailure(account: string, address: string, log: Logger): Promise<void> {
    await this.count('address', pairKey(account, address), { email: account, ip: address }, log);
    await this.count('account', account, { email: account, ip: address }, log);
  }

  /** A sign-in: this address's failures for the account are forgotten and the address is known to it. */
  async recordSuccess(account: string, address: string, log: Logger): Promise<void> {
    await this.guard(log, () => this.failures.address.delete(pairKey(account, address)));
    await this.guard(log, () => this.known.block(pairKey(account, address), KNOWN_ADDRESS_SECONDS));
  }

  /** A password set with a reset token (which proves the mailbox): every lock of the account is lifted here. */
  async recordReset(account: string, address: string, log: Logger): Promise<void> {
    await this.guard(log, () => this.failures.account.delete(account));
    await this.recordSuccess(account, address, log);
  }

  private isLocked(state: RateLimiterRes | null | undefined, limit: number): state is RateLimiterRes {
    return state !== null && state !== undefined && state.consumedPoints > limit && state.msBeforeNext > 0;
  }

  private async isKnown(account: string, address: string, log: Logger): Promise<boolean> {
    const state = await this.guard(log, () => this.known.get(pairKey(account, address)));
    return state !== null && state !== undefined && state.msBeforeNext > 0;
  }

  private async count(scope: Scope, key: string, who: { email: string; ip: string }, log: Logger): Promise<void> {
    try {
      const counted = await this.failures[scope].consume(key);
      if (counted.remainingPoints > 0) return;
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) {
        log.warn({ err: rejection }, 'login failure limiter unavailable');
        return;
      }
      // Already locked: a failure while locked (the pair may be locked while the account is not) does not lock again.
      if (rejection.consumedPoints > this.lockedAt(scope) + 1) return;
    }
    const lockouts = await this.guard(log, () => this.lockouts.penalty(`${scope}:${key}`, 1));
    const seconds = Math.min(MAX_LOCKOUT_SECONDS, this.options.lockoutSeconds * 2 ** Math.max(0, (lockouts?.consumedPoints ?? 1) - 1));
    await this.guard(log, () => this.failures[scope].block(key, seconds));
    this.options.security('account_locked', { ...who, scope, retryAfterSeconds: seconds }, log);
  }

  private lockedAt(scope: Scope): number {
    return scope === 'address' ? this.options.failuresBeforeLockout : this.options.accountFailuresBeforeLockout;
  }

  private async guard<T>(log: Logger, action: () => Promise<T>): Promise<T | undefined> {
    try {
      return await action();
    } catch (error) {
      log.warn({ err: error }, 'account lockout store unavailable');
      return undefined;
    }
  }
}

function pairKey(account: string, address: string): string {
  return `${account}\n${address}`;
}
