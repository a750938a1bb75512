/**
 * A worker renews its users' shares of the slots every few seconds. While Redis is away,
 * each renewal fails: the first failure is a warning, the rest are counted until a renewal
 * succeeds again, which says so with the count. A Redis away for minutes wrote the same
 * warning every renewal before.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { createLogger } from '../../../services/core/logger';
import { createRedisConnection } from '../../../services/core/queue/connection';
import { FairShare } from '../../../services/worker/fair-share';
import { startRedis } from '../../harness/redis';

describe('fair share renewals while Redis is away', () => {
  it('warns once across several failed renewals, and says when one succeeds again', async () => {
    const redis = await startRedis();
    const connection = createRedisConnection(redis.url, 'client');
    const log = createLogger({ service: 'fair-share-test', level: 'silent' });
    const warn = jest.spyOn(log, 'warn');
    const debug = jest.spyOn(log, 'debug');
    const info = jest.spyOn(log, 'info');
    const isRenewalFailure = (message: unknown) => String(message).startsWith('could not renew the shares of running jobs');
    const warned = () => warn.mock.calls.filter(([, message]) => isRenewalFailure(message));
    const failures = () => warned().length + debug.mock.calls.filter(([, message]) => isRenewalFailure(message)).length;
    const recovered = () => info.mock.calls.filter(([, message]) => message === 'the shares of running jobs are renewed again').map(([fields]) => fields as { failedRenewals: number });
    const fairShare = new FairShare({ connection: () => connection, prefix: `pk-renewal-${randomUUID()}`, perUser: 2, relay: { promote: async () => false }, log });
    try {
      await connection.ping();
      expect(await fairShare.take(randomUUID(), randomUUID(), 'sleep')).toEqual({ share: expect.anything() });
      redis.pause();
      for (const deadline = Date.now() + 60_000; failures() < 3 && Date.now() < deadline; ) await delay(200);
      expect(failures()).toBeGreaterThanOrEqual(3);
      expect(warned()).toHaveLength(1);
      redis.resume();
      for (const deadline = Date.now() + 30_000; recovered().length === 0 && Date.now() < deadline; ) await delay(200);
      expect(recovered()).toEqual([{ failedRenewals: failures() }]);
      expect(warned()).toHaveLength(1);
    } finally {
      fairShare.close();
      redis.resume();
      connection.disconnect();
      await redis.destroy();
    }
  }, 120_000);
});
