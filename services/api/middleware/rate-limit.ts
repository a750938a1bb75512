import type { Request, RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Logger } from '../../core/logger';
import { TooManyRequestsError } from '../errors';

export interface RateLimitOptions {
  /** Shared counters across API processes; without it each process counts on its own. */
  redis?: Redis;
  keyPrefix: string;
  points: number;
  durationSeconds: number;
  log: Logger;
}

/**
 * Redis-backed limiter with an in-memory insurance limiter: while Redis is not ready the
 * process keeps limiting on its own counters instead of failing every request.
 */
function createLimiter(options: RateLimitOptions): RateLimiterAbstract {
  const memory = new RateLimiterMemory({ keyPrefix: options.keyPrefix, points: options.points, duration: options.durationSeconds });
  if (!options.redis) return memory;
  return new RateLimiterRedis({
    storeClient: options.redis,
    keyPrefix: options.keyPrefix,
    points: options.points,
    duration: options.durationSeconds,
    rejectIfRedisNotReady: true,
    insuranceLimiter: memory,
  });
}

/** Consumes one point for the key of each request; over the limit → 429 with Retry-After. */
export function rateLimit(options: RateLimitOptions, keyOf: (req: Request) => string): RequestHandler {
  const limiter = createLimiter(options);
  return async (req, _res, next) => {
    try {
      await limiter.consume(keyOf(req));
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) {
        throw new TooManyRequestsError('rate limit exceeded', Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)));
      }
      // Both stores failed: limiting is a safeguard, not a reason to refuse service.
      options.log.warn({ err: rejection, limiter: options.keyPrefix }, 'rate limiter unavailable; request let through');
    }
    next();
  };
}
