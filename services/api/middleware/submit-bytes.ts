import type { Request, RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { declaredLength, isEncoded } from '../body-headers';
import { jsonBodyBytes } from './json-body';
import { createLimiter, LeasedPoints, tooManyRequests } from './rate-limit';

export interface SubmitBytesLimitOptions {
  /** Shared counters across API processes; without it each process counts on its own. */
  redis?: Redis;
  keyPrefix: string;
  /** SUBMIT_BYTES_PER_SECOND: at least the JSON limit (env-consistency.ts), so any body the API takes fits an unspent second. */
  bytesPerSecond: number;
  /** JSON_BODY_LIMIT_BYTES: a body declared past it is refused (413) unread, and charged nothing. */
  jsonLimitBytes: number;
}

export interface SubmitBytesLimit {
  /** Before the body is read: charges a declared body (Content-Length), or answers 429 before it is sent. */
  beforeBody: RequestHandler;
  /** Once the body is parsed: charges a body not charged before it was read (chunked, compressed) the bytes it decoded to. */
  afterBody(req: Request): Promise<void>;
}

/**
 * The counters count 64-byte units: a small submit costs one, so a user at the count limit's
 * default (2,000 a second) spends a small part of the default second, and a MiB is 16,384.
 */
const UNIT_BYTES = 64;
/** Points leased from the shared counters at a time, as the count limits lease theirs. */
const LEASES_PER_WINDOW = 20;

const charged = new WeakSet<Request>();

/**
 * Per user, the bytes of submit bodies the API takes in a second, counted across the API
 * processes (Redis, as the other limits, each process on its own while Redis is away). A
 * submit's cost to the API grows with its body far more than with anything else: its parse,
 * checks, idempotency hash and insert (about 60 ms a MiB, up to about 250 ms for a MiB of
 * small values), so the count limit alone would let one user take the API from all others
 * with large bodies. A body is charged its size rounded up to 64 bytes: a declared one before
 * it is read, so one over what is left of the user's second is answered 429 with
 * Retry-After before its bytes are sent (before `100 Continue`); a chunked or compressed one
 * once it is read, what it decoded to, and is refused then if the second is spent. A body refused afterwards (400, 403) was
 * read and checked all the same and stays charged.
 */
export function submitBytesLimit(options: SubmitBytesLimitOptions, keyOf: (req: Request) => string): SubmitBytesLimit {
  const points = Math.max(1, Math.floor(options.bytesPerSecond / UNIT_BYTES));
  const limiter = createLimiter({ redis: options.redis, keyPrefix: options.keyPrefix, points, durationSeconds: 1 });
  const leased = new LeasedPoints(limiter, Math.max(1, Math.floor(points / LEASES_PER_WINDOW)));
  const limitMessage = `submit bytes limit: ${options.bytesPerSecond} bytes of submit bodies per second (SUBMIT_BYTES_PER_SECOND); larger data goes through /v1/files`;

  const charge = async (req: Request, bytes: number): Promise<void> => {
    try {
      await leased.consume(keyOf(req), Math.max(1, Math.ceil(bytes / UNIT_BYTES)));
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) throw tooManyRequests(rejection, options.bytesPerSecond, limitMessage);
      // Both stores failed: limiting is a safeguard, not a reason to refuse service.
      req.log.warn({ err: rejection, limiter: options.keyPrefix }, 'submit bytes limiter unavailable; request let through');
    }
  };

  return {
    async beforeBody(req, _res, next) {
      const declared = declaredLength(req);
      // A compressed body costs what it decodes to, known once it is read.
      if (!isEncoded(req) && declared !== undefined && Number.isFinite(declared) && declared <= options.jsonLimitBytes) {
        charged.add(req);
        await charge(req, declared);
      }
      next();
    },
    async afterBody(req) {
      if (charged.has(req)) return;
      charged.add(req);
      await charge(req, jsonBodyBytes(req) ?? 0);
    },
  };
}
