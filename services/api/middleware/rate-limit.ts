import { setTimeout as sleep } from 'node:timers/promises';
import type { Request, RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { TooManyRequestsError } from '../errors';

export interface RateLimitOptions {
  /** Shared counters across API processes; without it each process counts on its own. */
  redis?: Redis;
  keyPrefix: string;
  points: number;
  durationSeconds: number;
}

/** What the API asks of a limiter: rate-limiter-flexible's operations it uses. */
export type Limiter = Pick<RateLimiterAbstract, 'consume' | 'get' | 'delete' | 'penalty' | 'reward' | 'block'>;

/**
 * After Redis failed a limiter's call, how long this process counts on its own before asking
 * Redis again.
 */
const REDIS_RETRY_AFTER_MS = 5_000;

/**
 * The longest delay Node's timers keep (2^31 - 1 ms, about 24.8 days): a longer one fires
 * after 1 ms instead. rate-limiter-flexible's memory store forgets a key when such a timer
 * fires, so a window or block longer than this (the 30 days an address stays known to an
 * account) would be forgotten at once.
 */
export const LONGEST_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1_000);

/**
 * This process's own counters: rate-limiter-flexible's memory store, with every window and
 * block kept to LONGEST_TIMER_SECONDS. Counters held in one process's memory last at most as
 * long as the process, which in practice is far less than that.
 */
class OwnCounters extends RateLimiterMemory {
  constructor(shape: { keyPrefix: string; points: number; duration: number; blockDuration: number }) {
    super({ ...shape, duration: Math.min(shape.duration, LONGEST_TIMER_SECONDS), blockDuration: Math.min(shape.blockDuration, LONGEST_TIMER_SECONDS) });
  }

  override block(key: string | number, seconds: number): Promise<RateLimiterRes> {
    return super.block(key, Math.min(seconds, LONGEST_TIMER_SECONDS));
  }
}

/**
 * Until when the limiters on a Redis client count on their own counters (epoch ms), by
 * client: one failed call of any of them sends all of them there, so a request that asks
 * several limiters (a login asks up to four) waits out one command timeout, not one each.
 */
const ownCountersUntil = new WeakMap<Redis, number>();

/**
 * Shared counters in Redis, and this process's own counters while Redis fails. A Redis that
 * is down fails a call at once (the connection is not ready); one that hangs (stopped,
 * partitioned) fails it only at the client's command timeout (1 s). rate-limiter-flexible's
 * insurance limiter takes over after each failed call, so with a hung Redis every limited
 * request would wait that second, though submissions do not need Redis (they go to
 * PostgreSQL). Here one failed call sends the calls of the next REDIS_RETRY_AFTER_MS, of
 * every limiter on the same client, to this process's own counters.
 */
class SharedOrOwnCounters implements Limiter {
  constructor(
    private readonly redis: Redis,
    private readonly shared: RateLimiterRedis,
    private readonly own: OwnCounters,
    private readonly retryAfterMs: number,
  ) {}

  consume(key: string | number, points?: number): Promise<RateLimiterRes> {
    return this.either((limiter) => limiter.consume(key, points));
  }

  get(key: string | number): Promise<RateLimiterRes | null> {
    return this.either((limiter) => limiter.get(key));
  }

  delete(key: string | number): Promise<boolean> {
    return this.either((limiter) => limiter.delete(key));
  }

  penalty(key: string | number, points?: number): Promise<RateLimiterRes> {
    return this.either((limiter) => limiter.penalty(key, points));
  }

  reward(key: string | number, points?: number): Promise<RateLimiterRes> {
    return this.either((limiter) => limiter.reward(key, points));
  }

  block(key: string | number, seconds: number): Promise<RateLimiterRes> {
    return this.either((limiter) => limiter.block(key, seconds));
  }

  private async either<T>(call: (limiter: RateLimiterAbstract) => Promise<T>): Promise<T> {
    if (Date.now() < (ownCountersUntil.get(this.redis) ?? 0)) return call(this.own);
    try {
      return await call(this.shared);
    } catch (error) {
      // A rejection is the shared counters' answer (over the limit), not a failure of Redis.
      if (error instanceof RateLimiterRes) throw error;
      ownCountersUntil.set(this.redis, Date.now() + this.retryAfterMs);
      return call(this.own);
    }
  }
}

/**
 * Redis-backed limiter that counts on this process's own counters while Redis is away or
 * hangs, instead of failing every request (see SharedOrOwnCounters).
 */
export function createLimiter(options: RateLimitOptions & { blockDurationSeconds?: number; redisRetryAfterMs?: number }): Limiter {
  const shape = { keyPrefix: options.keyPrefix, points: options.points, duration: options.durationSeconds, blockDuration: options.blockDurationSeconds ?? 0 };
  const own = new OwnCounters(shape);
  if (!options.redis) return own;
  const shared = new RateLimiterRedis({ ...shape, storeClient: options.redis, rejectIfRedisNotReady: true });
  return new SharedOrOwnCounters(options.redis, shared, own, options.redisRetryAfterMs ?? REDIS_RETRY_AFTER_MS);
}

/** A rejection of rate-limiter-flexible as the 429 the problem handler answers (Retry-After, RateLimit-*). */
export function tooManyRequests(rejection: RateLimiterRes, limit: number, message = 'rate limit exceeded'): TooManyRequestsError {
  return new TooManyRequestsError(message, Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)), limit);
}

/** Below this many points per window every request asks the shared store; above, points are leased. */
const LEASE_THRESHOLD = 40;
/** Leased points held per key at most: a key no longer seen lets its lease go after its window. */
const MAX_LEASES = 10_000;
/** A refusal from a window that ends within this long waits for the next window instead of answering 429. */
const WINDOW_TURN_WAIT_MS = 10;
/** Asks of the store one lease request makes at most while windows turn; the last answer stands. */
const WINDOW_TURN_ATTEMPTS = 3;

/**
 * Points taken from the shared store a batch at a time (a twentieth of the window's
 * budget) and spent locally, so a busy key costs one Redis round trip per batch instead
 * of one per request, on a submit path that otherwise reaches Redis only once per batch
 * of jobs (the relay's hand-over). The store still never grants more than the limit per
 * window across all processes; a lease that cannot be filled is counted there, so a key
 * at its limit is limited up to one lease early. A charge of several points (a body's bytes)
 * that the lease no longer covers takes a new lease, the old one's rest left unspent; one
 * larger than a lease is asked of the store as it is.
 */
export class LeasedPoints {
  private readonly leases = new Map<string, { remaining: number; expiresAt: number }>();
  /** One lease request per key at a time: concurrent requests wait for it instead of each taking a lease. */
  private readonly acquiring = new Map<string, Promise<void>>();

  constructor(
    private readonly limiter: Limiter,
    private readonly leaseSize: number,
  ) {}

  /** Takes `points` from the key's lease; a charge larger than a lease is asked of the store as it is. */
  async consume(key: string, points = 1): Promise<void> {
    if (points > this.leaseSize) {
      await this.limiter.consume(key, points);
      return;
    }
    for (;;) {
      const lease = this.leases.get(key);
      if (lease && lease.remaining >= points && Date.now() < lease.expiresAt) {
        lease.remaining -= points;
        return;
      }
      let acquiring = this.acquiring.get(key);
      if (!acquiring) {
        acquiring = this.acquire(key).finally(() => this.acquiring.delete(key));
        this.acquiring.set(key, acquiring);
      }
      // A rejection (the key is out of points) reaches every request that waited for it.
      await acquiring;
    }
  }

  private async acquire(key: string): Promise<void> {
    const granted = await this.leaseFromCurrentWindow(key);
    const now = Date.now();
    if (this.leases.size >= MAX_LEASES) {
      for (const [held, { expiresAt }] of this.leases) if (expiresAt <= now) this.leases.delete(held);
      if (this.leases.size >= MAX_LEASES) this.leases.clear();
    }
    this.leases.set(key, { remaining: this.leaseSize, expiresAt: now + granted.msBeforeNext });
  }

  /**
   * A lease from the store's window as it stands, unless that window is in its last moments.
   * In its last millisecond Redis still counts into a window whose PTTL reads 0: a lease
   * granted then would lapse at once, the key's next request would ask again into the same
   * window, and twenty such leases in that millisecond (a busy key makes that many round
   * trips) would exhaust it and refuse a key far under its limit for a whole second. So a
   * grant with no time left, or a refusal from a window that ends within
   * WINDOW_TURN_WAIT_MS, waits for the turn and asks the new window.
   */
  private async leaseFromCurrentWindow(key: string): Promise<RateLimiterRes> {
    for (let attempt = 1; ; attempt += 1) {
      const lastAttempt = attempt >= WINDOW_TURN_ATTEMPTS;
      let answer: RateLimiterRes;
      try {
        answer = await this.limiter.consume(key, this.leaseSize);
        if (answer.msBeforeNext > 0 || lastAttempt) return answer;
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes) || rejection.msBeforeNext > WINDOW_TURN_WAIT_MS || lastAttempt) throw rejection;
        answer = rejection;
      }
      await sleep(Math.max(0, answer.msBeforeNext) + 1);
    }
  }
}

/** Consumes one point for the key of each request; over the limit → 429 with Retry-After. */
export function rateLimit(options: RateLimitOptions, keyOf: (req: Request) => string): RequestHandler {
  const limiter = createLimiter(options);
  const points = options.points >= LEASE_THRESHOLD ? new LeasedPoints(limiter, Math.floor(options.points / 20)) : limiter;
  return async (req, _res, next) => {
    try {
      await points.consume(keyOf(req));
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) throw tooManyRequests(rejection, options.points);
      // Both stores failed: limiting is a safeguard, not a reason to refuse service.
      req.log.warn({ err: rejection, limiter: options.keyPrefix }, 'rate limiter unavailable; request let through');
    }
    next();
  };
}
