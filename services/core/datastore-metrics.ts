import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import type { Metrics } from './metrics';

/** What Redis says about its memory and refused writes, from one INFO reply. */
export interface RedisMemoryInfo {
  usedBytes: number;
  /** 0 when unlimited. */
  maxBytes: number;
  /** `errorstat_OOM` count since the server started (0 when Redis has refused nothing). */
  oomErrors: number;
}

/** Parses the `memory` and `errorstats` sections of an INFO reply. Pure, so tests can feed it text. */
export function parseRedisInfo(info: string): RedisMemoryInfo {
  const field = (name: string): string | undefined => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
  const oom = /^errorstat_OOM:count=(\d+)/m.exec(info)?.[1];
  return {
    usedBytes: Number(field('used_memory') ?? 0),
    maxBytes: Number(field('maxmemory') ?? 0),
    oomErrors: Number(oom ?? 0),
  };
}

/**
 * Reads what the alert rules need from the data stores themselves, rather than from a
 * separate exporter with its own credentials: how long the backlog has waited (PostgreSQL
 * is the source of truth for queued jobs), how close the PostgreSQL server is to its
 * connection limit (counting every client, not only this pool), and Redis memory against
 * `maxmemory` with the writes it refused. One call per refresh; each part fails alone.
 */
export class DataStoreMetrics {
  private lastOomErrors: number | undefined;

  constructor(private readonly deps: { generalPool: Pool; redis: Redis; metrics: Metrics }) {}

  async refresh(): Promise<void> {
    const results = await Promise.allSettled([this.refreshPostgres(), this.refreshRedis()]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async refreshPostgres(): Promise<void> {
    const { rows } = await this.deps.generalPool.query<{ oldest_age: number | null; connections: number; max_connections: number }>({
      name: 'metrics.datastore',
      // The partial index on queued jobs makes min(updated_at) an index lookup; pg_stat_activity
      // lists every backend of the server (a non-superuser sees them all, with fewer columns).
      text: `SELECT
               (SELECT extract(epoch FROM now() - min(updated_at))::float8 FROM jobs WHERE status = 'queued') AS oldest_age,
               (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend') AS connections,
               current_setting('max_connections')::int AS max_connections`,
    });
    const row = rows[0];
    if (!row) return;
    const { metrics } = this.deps;
    metrics.queueOldestJobAge.set(Math.max(0, row.oldest_age ?? 0));
    metrics.postgresConnections.set(row.connections);
    metrics.postgresMaxConnections.set(row.max_connections);
  }

  private async refreshRedis(): Promise<void> {
    const { metrics, redis } = this.deps;
    let info: RedisMemoryInfo;
    try {
      const [memory, errors] = await Promise.all([redis.info('memory'), redis.info('errorstats')]);
      info = parseRedisInfo(`${memory}\n${errors}`);
    } catch (error) {
      metrics.redisUp.set(0);
      throw error;
    }
    metrics.redisUp.set(1);
    metrics.redisMemoryUsed.set(info.usedBytes);
    metrics.redisMemoryMax.set(info.maxBytes);
    // Redis keeps the count since it started: grow ours by what it grew, or by all of it after a restart.
    const previous = this.lastOomErrors;
    const grown = previous === undefined ? 0 : info.oomErrors >= previous ? info.oomErrors - previous : info.oomErrors;
    if (grown > 0) metrics.redisRejectedWrites.inc(grown);
    this.lastOomErrors = info.oomErrors;
  }
}
