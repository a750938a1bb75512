import type { Redis, Result } from 'ioredis';
import { QUEUES } from '../../contract';

/** Sorted set of the jobs of one user that hold a share now: job id → when its lease ends (ms since the epoch). */
export function runningSharesKey(prefix: string, ownerId: string): string {
  return `${prefix}:${QUEUES.jobs}:running-of:${ownerId}`;
}

/** Sorted set of the own entries of one user's jobs that wait for a share: job id → when it first waited. */
export function heldEntriesKey(prefix: string, ownerId: string): string {
  return `${prefix}:${QUEUES.jobs}:held-of:${ownerId}`;
}

/**
 * KEYS: 1 the user's running shares, 2 the user's held entries.
 * ARGV: 1 job id, 2 now (ms), 3 lease (ms), 4 shares one user may hold, 5 how long a held set outlives its last hold (ms).
 *
 * Shares whose lease ended (their worker is gone) are dropped first. The job takes a share
 * when one is free, or keeps its own when it already holds one (delivered again while its
 * lease runs), and leaves the held set. Otherwise it joins the held set, keeping the place
 * it first waited at, so the user's jobs are handed on in the order they were held.
 * Answers 0 for a share taken, else how many of the user's entries wait in the line.
 */
const TAKE_SHARE_SCRIPT = `
local now = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], lease)
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[2], 'NX', now, ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return redis.call('ZCARD', KEYS[2])
`;

/**
 * KEYS: 1 the user's running shares, 2 the user's held entries. ARGV: 1 job id.
 * Frees the job's share and takes the user's longest-held entry off the held set, for the
 * caller to call back from its delay.
 */
const RELEASE_SHARE_SCRIPT = `
redis.call('ZREM', KEYS[1], ARGV[1])
local popped = redis.call('ZPOPMIN', KEYS[2])
return popped[1] or false
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    platformTakeUserShare(numberOfKeys: number, ...keysAndArgs: string[]): Result<number, Context>;
    platformReleaseUserShare(numberOfKeys: number, ...keysAndArgs: string[]): Result<string | null, Context>;
  }
}

function defineShareCommands(connection: Redis): void {
  // ioredis sends EVALSHA and falls back to EVAL when Redis lost its script cache (a restart).
  if (typeof connection.platformTakeUserShare !== 'function') connection.defineCommand('platformTakeUserShare', { lua: TAKE_SHARE_SCRIPT });
  if (typeof connection.platformReleaseUserShare !== 'function') connection.defineCommand('platformReleaseUserShare', { lua: RELEASE_SHARE_SCRIPT });
}

export interface UserSharesOptions {
  /** Jobs of one user that run at once across every worker (JOBS_RUNNING_PER_USER). */
  perUser: number;
  /** How long a share outlives the last word from its worker: the longest a crashed worker's shares stay taken. */
  leaseMs: number;
  /** How long a held set outlives its last hold: longer than a held entry's longest delay, so nothing waiting is forgotten. */
  heldTtlMs: number;
}

/**
 * Shares of the workers' slots, per user: a job runs only while its user holds one, and
 * one user holds at most `perUser` across every worker. The count lives in Redis, beside the
 * queue, so every worker sees the same one. A share is a lease its worker renews while the
 * job runs; a worker that dies leaves shares that lapse within `leaseMs`.
 */
export class UserShares {
  constructor(
    private readonly connection: Redis,
    private readonly prefix: string,
    private readonly options: UserSharesOptions,
  ) {
    defineShareCommands(connection);
  }

  /**
   * Takes a share for the job (answers 0), or holds its entry in the user's line when they
   * are all taken (answers how many entries wait in that line, this one included).
   */
  async take(ownerId: string, jobId: string, now = Date.now()): Promise<number> {
    const { leaseMs, perUser, heldTtlMs } = this.options;
    return this.connection.platformTakeUserShare(
      2,
      runningSharesKey(this.prefix, ownerId),
      heldEntriesKey(this.prefix, ownerId),
      jobId,
      String(now),
      String(leaseMs),
      String(perUser),
      String(heldTtlMs),
    );
  }

  /** Frees the job's share; answers the user's longest-held entry (its job id), now out of the line, if any waits. */
  async release(ownerId: string, jobId: string): Promise<string | undefined> {
    const next = await this.connection.platformReleaseUserShare(2, runningSharesKey(this.prefix, ownerId), heldEntriesKey(this.prefix, ownerId), jobId);
    return next ?? undefined;
  }

  /** Takes the user's longest-held entry out of the line: one that could not be called back is not worth waiting for. */
  async nextHeld(ownerId: string): Promise<string | undefined> {
    const [next] = await this.connection.zpopmin(heldEntriesKey(this.prefix, ownerId));
    return next;
  }

  /** Extends the leases of shares still held (their jobs run on); a share already freed is left freed. */
  async renew(shares: readonly { ownerId: string; jobId: string }[], now = Date.now()): Promise<void> {
    if (shares.length === 0) return;
    const pipeline = this.connection.pipeline();
    const until = String(now + this.options.leaseMs);
    const owners = new Set<string>();
    for (const { ownerId, jobId } of shares) {
      pipeline.zadd(runningSharesKey(this.prefix, ownerId), 'XX', until, jobId);
      owners.add(ownerId);
    }
    for (const ownerId of owners) pipeline.pexpire(runningSharesKey(this.prefix, ownerId), this.options.leaseMs);
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([error]) => error);
    if (failed) throw failed[0];
  }
}
