import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import { DataStoreMetrics, parseRedisInfo } from '../../../services/core/datastore-metrics';
import { createMetrics } from '../../../services/core/metrics';

const info = (used: number, max: number, oom?: number) =>
  `# Memory\r\nused_memory:${used}\r\nused_memory_human:1M\r\nmaxmemory:${max}\r\n# Errorstats\r\nerrorstat_ERR:count=2\r\n${oom === undefined ? '' : `errorstat_OOM:count=${oom}\r\n`}`;

describe('data store metrics', () => {
  it('reads used memory, maxmemory and refused writes from INFO', () => {
    expect(parseRedisInfo(info(1_048_576, 2_147_483_648, 7))).toEqual({ usedBytes: 1_048_576, maxBytes: 2_147_483_648, oomErrors: 7 });
    expect(parseRedisInfo(info(10, 0))).toEqual({ usedBytes: 10, maxBytes: 0, oomErrors: 0 });
  });

  it('counts refused writes as Redis grows them, survives a Redis restart, and reports Redis down', async () => {
    const metrics = createMetrics('test');
    const replies = [info(1, 100, 3), info(1, 100, 5), info(1, 100, 2)];
    let down = false;
    const redis = { info: async (section: string) => {
      if (down) throw new Error('connection refused');
      return section === 'memory' ? (replies[0] as string) : (replies.shift() as string);
    } } as unknown as Redis;
    const pool = { query: async () => ({ rows: [{ oldest_age: 12.5, connections: 9, max_connections: 100 }] }) } as unknown as Pool;
    const stores = new DataStoreMetrics({ generalPool: pool, redis, metrics });
    const read = async (name: string) => (await metrics.registry.getSingleMetricAsString(name)).split('\n').filter((l) => !l.startsWith('#')).join(' ');

    await stores.refresh(); // first sight: 3 refusals happened before this process watched
    expect(await read('platform_redis_rejected_writes_total')).toMatch(/ 0$/);
    await stores.refresh(); // +2
    await stores.refresh(); // Redis restarted, counting from 0 again: +2
    expect(await read('platform_redis_rejected_writes_total')).toMatch(/ 4$/);
    expect(await read('platform_queue_oldest_job_age_seconds')).toMatch(/ 12\.5$/);
    expect(await read('platform_postgres_connections')).toMatch(/ 9$/);
    down = true;
    await expect(stores.refresh()).rejects.toThrow('connection refused');
    expect(await read('platform_redis_up')).toMatch(/ 0$/);
  });
});
