/**
 * The eviction-policy check at start (BullMQ loses jobs when Redis evicts keys) waits for
 * Redis to answer: a Redis down when a process starts gave a "could not read
 * maxmemory-policy (CONFIG may be disabled)" warning beside the outage's own, pointing at
 * the wrong cause, and the policy was then never checked at all.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { createLogger } from '../../../services/core/logger';
import { createRuntime, type Runtime } from '../../../services/core/runtime';
import { startRedis, type RedisServer } from '../../harness/redis';
import { useSharedServices } from '../../harness/shared';
import { testEnv, waitFor } from './fixture';

describe('the maxmemory-policy check at start', () => {
  let redis: RedisServer | undefined;
  let core: Runtime | undefined;
  let objectDir: string | undefined;

  afterAll(async () => {
    await core?.close();
    await redis?.destroy();
    if (objectDir) await rm(objectDir, { recursive: true, force: true });
  });

  async function configCalls(url: string): Promise<number> {
    const probe = new Redis(url, { maxRetriesPerRequest: 1 });
    try {
      return Number(/^cmdstat_config(?:\|get)?:calls=(\d+)/m.exec(await probe.info('commandstats'))?.[1] ?? 0);
    } finally {
      probe.disconnect();
    }
  }

  it('says nothing of the policy while Redis is down at start, and checks it once Redis answers', async () => {
    const { databaseUrl, redisPrefix } = await useSharedServices();
    redis = await startRedis();
    await redis.stop();
    objectDir = await mkdtemp(path.join(os.tmpdir(), 'pk-policy-objects-'));
    const lines: { msg: string }[] = [];
    const log = createLogger({ service: 'api', level: 'warn', destination: { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) } });
    core = await createRuntime(testEnv({ databaseUrl, redisUrl: redis.url, redisPrefix, objectDir }), { service: 'api', log });

    await waitFor('the outage to be reported', async () => lines.some((line) => line.msg === 'Redis connection error'));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(lines.filter((line) => /maxmemory-policy/.test(line.msg))).toEqual([]);

    await redis.start();
    await waitFor('the policy to be read once Redis is back', async () => (await configCalls(redis!.url)) >= 1);
    // Read and found noeviction (the harness's setting): nothing to warn about.
    expect(lines.filter((line) => /maxmemory-policy/.test(line.msg))).toEqual([]);
  });
});
