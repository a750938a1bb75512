/**
 * A queue command checks Redis before it starts; Redis can still stop answering while it
 * runs (paused, partitioned). `platform queues pause` with Redis paused after that check
 * ended with "platform: Command timed out", kind `failed`: nothing named Redis, and a script
 * telling an outage (kind `unavailable`) from a failed command took it for the latter.
 * On a Redis of its own: the test pauses it.
 */
import { withRuntime } from '../../../services/cli/context';
import { describeFailure } from '../../../services/cli/failure';
import { DependencyUnavailableError } from '../../../services/cli/output';
import { startRedis, type RedisServer } from '../../harness/redis';
import { useSharedServices } from '../../harness/shared';

describe('a queue command whose Redis stops answering after its first check', () => {
  let redis: RedisServer;
  const saved = { ...process.env };

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    process.env = { ...saved };
    await redis?.destroy();
  });

  it('says Redis is unavailable (kind unavailable, exit 1), not a bare command timeout', async () => {
    const { databaseUrl } = await useSharedServices();
    Object.assign(process.env, { DATABASE_URL: databaseUrl, REDIS_URL: redis.url, QUEUE_PREFIX: '{cli-midway}', LOG_LEVEL: 'silent' });
    let failure: unknown;
    try {
      await withRuntime(
        async (core) => {
          redis.pause();
          await core.admin.pause();
          return 0;
        },
        { needs: ['postgres', 'redis'] },
      );
    } catch (error) {
      failure = error;
    } finally {
      redis.resume();
    }
    expect(failure).toBeInstanceOf(DependencyUnavailableError);
    expect(describeFailure(failure)).toMatchObject({ kind: 'unavailable', exitCode: 1, message: expect.stringMatching(/^Redis is unavailable: it stopped answering during the command/) });
  });
});
