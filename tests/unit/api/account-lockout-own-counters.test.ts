import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { AccountLockout } from '../../../services/api/middleware/account-lockout';
import { createLimiter, LONGEST_TIMER_SECONDS } from '../../../services/api/middleware/rate-limit';
import { createLogger } from '../../../services/core/logger';
import { findFreePort } from '../../harness/free-port';

const log = createLogger({ service: 'account-lockout-test', level: 'silent' });
const THIRTY_DAYS = 30 * 24 * 3_600;

/** A client of a Redis that is not there: every call fails, so the limiters count on their own. */
async function absentRedis(): Promise<Redis> {
  return new Redis({ port: await findFreePort(), lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
}

describe("a process's own counters keep windows longer than Node's longest timer", () => {
  let redis: Redis | undefined;
  afterEach(() => redis?.disconnect());

  it('keeps a 30-day block instead of forgetting it when its timer overflows (fires after 1 ms)', async () => {
    const limiter = createLimiter({ keyPrefix: 'long', points: 1, durationSeconds: THIRTY_DAYS });
    await limiter.block('address', THIRTY_DAYS);
    await sleep(20);
    const state = await limiter.get('address');
    expect(state?.msBeforeNext).toBeGreaterThan((LONGEST_TIMER_SECONDS - 60) * 1_000);
  });

  it('keeps an address an account signed in from known while Redis is away, so a credential-stuffing lock spares its owner', async () => {
    redis = await absentRedis();
    const lockout = new AccountLockout({ redis, prefix: 'test', failuresBeforeLockout: 5, accountFailuresBeforeLockout: 3, lockoutSeconds: 60, security: () => undefined });
    await lockout.recordSuccess('ada@example.com', 'home', log);
    for (let failure = 0; failure < 4; failure += 1) await lockout.recordFailure('ada@example.com', `stuffer-${failure}`, log);
    await sleep(20);
    await expect(lockout.assertOpen('ada@example.com', 'elsewhere', log)).rejects.toMatchObject({ status: 429 });
    await expect(lockout.assertOpen('ada@example.com', 'home', log)).resolves.toBeUndefined();
  });
});
