import { existsSync, readFileSync } from 'node:fs';
import Redis from 'ioredis';
import { Client } from 'pg';
import { childPidsOf, isProcessAlive } from '../../services/local/child';
import { findFreePort, isPortFree } from './free-port';
import { startPostgres, type PostgresServer } from './postgres';
import { startRedis, type RedisServer } from './redis';
import { useSharedServices } from './shared';

async function query<T extends Record<string, unknown>>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

async function withRedis<T>(url: string, use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  await redis.connect();
  try {
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

/** The server's pid and those of its children, read while it runs. */
function processTree(pid: number): number[] {
  return [pid, ...childPidsOf(pid)];
}

function listeningPid(port: number): number {
  // The server is a direct child of this process (exec'ed in place by setpriv), its port on its command line.
  for (const child of childPidsOf(process.pid)) {
    try {
      if (readFileSync(`/proc/${child}/cmdline`, 'utf8').includes(String(port))) return child;
    } catch {
      // exited
    }
  }
  throw new Error(`no child of this process serves port ${port}`);
}

describe('startPostgres', () => {
  let postgres: PostgresServer;

  beforeAll(async () => {
    postgres = await startPostgres();
  });

  afterAll(async () => {
    await postgres.destroy();
  });

  it('serves queries on a private port bound to 127.0.0.1', async () => {
    expect(postgres.port).not.toBe(5432);
    expect(postgres.url).toBe(`postgres://postgres@127.0.0.1:${postgres.port}/postgres`);
    const [row] = await query<{ listen: string; fsync: string }>(
      postgres.url,
      "SELECT current_setting('listen_addresses') AS listen, current_setting('fsync') AS fsync",
    );
    expect(row).toEqual({ listen: '127.0.0.1', fsync: 'off' });
  });

  it('creates isolated databases', async () => {
    const first = await postgres.createDatabase();
    const second = await postgres.createDatabase('named_one');
    expect(second).toBe(`postgres://postgres@127.0.0.1:${postgres.port}/named_one`);
    await query(first, 'CREATE TABLE only_in_first (id int)');
    const tables = await query(second, "SELECT 1 FROM pg_tables WHERE tablename = 'only_in_first'");
    expect(tables).toHaveLength(0);
  });

  it('keeps its data across stop and start on the same port', async () => {
    const url = await postgres.createDatabase();
    await query(url, 'CREATE TABLE kept (value text)');
    await query(url, "INSERT INTO kept VALUES ('before stop')");
    await postgres.stop();
    await expect(query(url, 'SELECT 1')).rejects.toThrow();
    await postgres.start();
    expect(await query(url, 'SELECT value FROM kept')).toEqual([{ value: 'before stop' }]);
  });

  it('recovers every committed row after kill', async () => {
    const url = await postgres.createDatabase();
    await query(url, 'CREATE TABLE survived (value int)');
    await query(url, 'INSERT INTO survived SELECT generate_series(1, 1000)');
    const tree = processTree(listeningPid(postgres.port));
    await postgres.kill();
    expect(tree.filter(isProcessAlive)).toEqual([]);
    await postgres.start();
    expect(await query(url, 'SELECT count(*)::int AS count FROM survived')).toEqual([{ count: 1000 }]);
  });
});

describe('startRedis', () => {
  it('is private, bound to 127.0.0.1, never evicts, and loses its data on restart without appendonly', async () => {
    const redis = await startRedis();
    try {
      expect(redis.port).not.toBe(6379);
      await withRedis(redis.url, async (client) => {
        expect(await client.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
        expect(await client.config('GET', 'bind')).toEqual(['bind', '127.0.0.1']);
        await client.set('key', 'value');
      });
      await redis.stop();
      await redis.start();
      expect(await withRedis(redis.url, (client) => client.get('key'))).toBeNull();
    } finally {
      await redis.destroy();
    }
  });

  it('with appendonly keeps data across stop/start and kill/start, and restartEmpty empties it', async () => {
    const redis = await startRedis({ appendonly: true });
    try {
      await withRedis(redis.url, (client) => client.set('job', 'queued'));
      await redis.stop();
      await redis.start();
      expect(await withRedis(redis.url, (client) => client.get('job'))).toBe('queued');

      await withRedis(redis.url, (client) => client.set('after-restart', 'yes'));
      await redis.kill();
      await redis.start();
      expect(await withRedis(redis.url, (client) => client.mget('job', 'after-restart'))).toEqual(['queued', 'yes']);

      await redis.restartEmpty();
      expect(await withRedis(redis.url, (client) => client.dbsize())).toBe(0);
    } finally {
      await redis.destroy();
    }
  });
});

describe('no process or directory left behind', () => {
  it('destroy stops every server process and removes the data', async () => {
    const [postgres, redis]: [PostgresServer, RedisServer] = await Promise.all([startPostgres(), startRedis()]);
    const postgresTree = processTree(listeningPid(postgres.port));
    const redisPid = listeningPid(redis.port);
    expect(postgresTree.length).toBeGreaterThan(1);
    await Promise.all([postgres.destroy(), redis.destroy()]);
    expect([...postgresTree, redisPid].filter(isProcessAlive)).toEqual([]);
    expect(existsSync(postgres.dataDir)).toBe(false);
    expect(await isPortFree(postgres.port)).toBe(true);
    expect(await isPortFree(redis.port)).toBe(true);
  });
});

describe('findFreePort', () => {
  it('hands out distinct free ports outside the well-known ones', async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => findFreePort()));
    expect(new Set(ports).size).toBe(20);
    for (const port of ports) expect([5432, 6379, 8080]).not.toContain(port);
  });
});

describe('useSharedServices', () => {
  it('hands each caller its own database and key prefix on the run-wide servers', async () => {
    const first = await useSharedServices();
    const second = await useSharedServices();
    expect(first.databaseUrl).not.toBe(second.databaseUrl);
    expect(first.redisUrl).toBe(second.redisUrl);
    expect(first.redisPrefix).toMatch(/^\{t-[0-9a-f-]{36}\}$/);
    expect(first.redisPrefix).not.toBe(second.redisPrefix);

    await query(first.databaseUrl, 'CREATE TABLE mine (id int)');
    expect(await query(second.databaseUrl, "SELECT 1 FROM pg_tables WHERE tablename = 'mine'")).toHaveLength(0);
    expect(await withRedis(first.redisUrl, (client) => client.ping())).toBe('PONG');
  });
});
