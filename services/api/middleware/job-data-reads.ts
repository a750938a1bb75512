import type { Request, RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { TooManyRequestsError } from '../errors';
import { createLimiter, tooManyRequests } from './rate-limit';

export interface JobDataReadLimitOptions {
  /** Shared counters across API processes; without it each process counts on its own. */
  redis?: Redis;
  keyPrefix: string;
  /** JOB_DATA_READ_BYTES_PER_SECOND. */
  bytesPerSecond: number;
}

/** What a read sends of job data (inputs and results), as its route knows before it runs. */
export type JobDataRead =
  /** Summaries only: nothing of what users stored, so nothing to count. */
  | 'none'
  /** One job whole, of a size known once it is sent: charged what it sent. */
  | 'whole'
  /** A page that stops at the bytes it is allowed (`jobDataAllowance`), `upToBytes` at most. */
  | { upToBytes: number };

/** The limit for one route, told what each of its reads sends. */
export type JobDataReadLimit = (readOf: (req: Request) => JobDataRead) => RequestHandler;

/** A user's reads of job data one API process serves at once; more are refused until one ends. */
const MAX_READS_AT_ONCE = 2;
/** The counters count KiB: whole bytes would pass rate-limiter-flexible's integers quickly. */
const KIB = 1_024;

const allowances = new WeakMap<Request, number>();

/** The bytes of job data a page read may send, given it by the limit; undefined on routes it does not limit. */
export function jobDataAllowance(req: Request): number | undefined {
  return allowances.get(req);
}

/**
 * Per user, the job data (inputs and results) the API reads back and sends: the one read
 * whose cost grows with what users store. Building a page of 4 MiB of inputs costs the API
 * about a tenth of a second, so one user reading such pages unchecked takes the API from
 * everyone else (bench/RESULTS.md, "One user's reads beside another's submits").
 *
 * Each read is charged what it sent, in a one-second window shared by the API processes
 * (Redis, as the other limits), after it is sent. A page reserves first what it may send:
 * its bound or what is left of the window, whichever is less, and is built to fit in that
 * (one item at least); what it did not use is given back. A read arriving when its user's
 * window is spent, or while the user already has MAX_READS_AT_ONCE reads in this process,
 * is answered 429 with Retry-After. Summaries carry nothing users stored and pass freely.
 */
export function jobDataReadLimit(options: JobDataReadLimitOptions, keyOf: (req: Request) => string): JobDataReadLimit {
  const points = Math.max(1, Math.floor(options.bytesPerSecond / KIB));
  const limiter = createLimiter({ redis: options.redis, keyPrefix: options.keyPrefix, points, durationSeconds: 1 });
  const readsAtOnce = new Map<string, number>();
  const limitMessage = `job data read limit: ${options.bytesPerSecond} bytes per second of inputs and results (JOB_DATA_READ_BYTES_PER_SECOND)`;

  const settle = (req: Request, key: string, reserved: number, sentBytes: number): void => {
    const spent = Math.ceil(sentBytes / KIB);
    const settling = spent > reserved ? limiter.consume(key, spent - reserved) : spent < reserved ? limiter.reward(key, reserved - spent) : undefined;
    // Over the limit after the fact is what the next read finds; a store failure leaves the window as it was.
    settling?.catch((error: unknown) => {
      if (!(error instanceof RateLimiterRes)) req.log.debug({ err: error }, 'job data read not counted');
    });
  };

  /** KiB reserved for the read: 0 for a whole job (charged after), a page's share of what is left. Throws the window when it is spent. */
  const reserve = async (key: string, read: Exclude<JobDataRead, 'none'>): Promise<number> => {
    const window = await limiter.get(key);
    const left = points - (window?.consumedPoints ?? 0);
    if (window && left <= 0) throw window;
    if (read === 'whole') return 0;
    const reserved = Math.min(left, Math.ceil(read.upToBytes / KIB));
    // Another process may take the rest of the window meanwhile: then this consume refuses.
    if (reserved > 0) await limiter.consume(key, reserved);
    return reserved;
  };

  return (readOf) => async (req, res, next) => {
    const read = readOf(req);
    if (read === 'none') {
      next();
      return;
    }
    const key = keyOf(req);
    const atOnce = readsAtOnce.get(key) ?? 0;
    if (atOnce >= MAX_READS_AT_ONCE) {
      throw new TooManyRequestsError(`${limitMessage}; at most ${MAX_READS_AT_ONCE} such reads at once`, 1, options.bytesPerSecond);
    }
    readsAtOnce.set(key, atOnce + 1);
    let ended = false;
    const end = (reserved: number): void => {
      if (ended) return;
      ended = true;
      const left = (readsAtOnce.get(key) ?? 1) - 1;
      if (left > 0) readsAtOnce.set(key, left);
      else readsAtOnce.delete(key);
      const length = Number(res.getHeader('content-length'));
      // A read cut short keeps what it reserved: its work was done all the same.
      settle(req, key, reserved, res.writableFinished && Number.isFinite(length) ? length : reserved * KIB);
    };
    let reserved = 0;
    try {
      reserved = await reserve(key, read);
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) {
        end(0);
        throw tooManyRequests(rejection, options.bytesPerSecond, limitMessage);
      }
      // Both stores failed: limiting is a safeguard, not a reason to refuse service.
      req.log.warn({ err: rejection, limiter: options.keyPrefix }, 'job data read limiter unavailable; request let through');
      reserved = 0;
    }
    if (typeof read === 'object') allowances.set(req, reserved > 0 ? reserved * KIB : read.upToBytes);
    res.once('close', () => end(reserved));
    next();
  };
}
