import type { Redis } from 'ioredis';
import { RateLimiterRes } from 'rate-limiter-flexible';
import type { SecurityEvents } from '../../core/auth';
import type { Logger } from '../../core/logger';
import { createLimiter, tooManyRequests, type Limiter } from './rate-limit';

/** Failures count within this window; a success clears them. */
const FAILURE_WINDOW_SECONDS = 15 * 60;
/** Lockouts of an account count within a day: each one doubles the next. */
const LOCKOUT_MEMORY_SECONDS = 24 * 3600;
const MAX_LOCKOUT_SECONDS = 24 * 3600;

export interface AccountLockoutOptions {
  redis?: Redis;
  prefix: string;
  failuresBeforeLockout: number;
  lockoutSeconds: number;
  security: SecurityEvents;
}

/**
 * Per-account login lockout with backoff, against credential stuffing spread over many
 * addresses: after `failuresBeforeLockout` failed logins an account is locked for
 * `lockoutSeconds`, doubled for each further lockout that day (up to a day). Counted for
 * any email, existing or not, so a lockout tells nothing about which accounts exist.
 */
export class AccountLockout {
  private readonly failures: Limiter;
  private readonly lockouts: Limiter;

  constructor(private readonly options: AccountLockoutOptions) {
    this.failures = createLimiter({ redis: options.redis, keyPrefix: `${options.prefix}:rl:login-failures`, points: options.failuresBeforeLockout, durationSeconds: FAILURE_WINDOW_SECONDS });
    this.lockouts = createLimiter({ redis: options.redis, keyPrefix: `${options.prefix}:rl:lockouts`, points: 1_000_000, durationSeconds: LOCKOUT_MEMORY_SECONDS });
  }

  /** Throws a 429 while the account is locked. `log` is the request's. */
  async assertOpen(account: string, log: Logger): Promise<void> {
    const state = await this.guard(log, () => this.failures.get(account));
    if (state && state.consumedPoints > this.options.failuresBeforeLockout && state.msBeforeNext > 0) {
      throw tooManyRequests(state, this.options.failuresBeforeLockout, 'too many failed logins: this account is locked for now; see Retry-After');
    }
  }

  async recordFailure(account: string, ip: string, log: Logger): Promise<void> {
    try {
      const counted = await this.failures.consume(account);
      if (counted.remainingPoints > 0) return;
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) {
        log.warn({ err: rejection }, 'login failure limiter unavailable');
        return;
      }
    }
    const lockouts = await this.guard(log, () => this.lockouts.penalty(account, 1));
    const seconds = Math.min(MAX_LOCKOUT_SECONDS, this.options.lockoutSeconds * 2 ** Math.max(0, (lockouts?.consumedPoints ?? 1) - 1));
    await this.guard(log, () => this.failures.block(account, seconds));
    this.options.security('account_locked', { email: account, ip, retryAfterSeconds: seconds }, log);
  }

  async recordSuccess(account: string, log: Logger): Promise<void> {
    await this.guard(log, () => this.failures.delete(account));
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
