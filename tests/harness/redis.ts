import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { RedisServer as RedisServerProcess } from '../../services/local/redis';
import { findFreePort } from './free-port';
import { createServerTempDir } from './temp-dirs';

export interface StartRedisOptions {
  /** Persist writes to an append-only file so `stop()`/`start()` keeps them. Off by default. */
  appendonly?: boolean;
}

export interface RedisServer {
  /** `redis://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  /** Starts again on the same port (with the same data when appendonly is on). */
  start(): Promise<void>;
  /** Stops, wipes the data, starts empty on the same port: the "Redis restarted without persistence" fault. */
  restartEmpty(): Promise<void>;
  /** SIGKILL, for crash tests. */
  kill(): Promise<void>;
  /** SIGSTOP: the server keeps its connections open and answers nothing (a hung or partitioned Redis). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Stops the server and deletes its directory. */
  destroy(): Promise<void>;
}

const BIND_FAILURE = /Address already in use|Could not create server TCP listening socket/i;

/** A private redis-server on a free port, bound to 127.0.0.1, with `maxmemory-policy noeviction`. */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const tempDir = await createServerTempDir('redis');
  let server: RedisServerProcess | undefined;
  for (let attempt = 1; !server; attempt += 1) {
    const candidate = new RedisServerProcess({
      port: await findFreePort(),
      dir: tempDir.path,
      appendonly: options.appendonly ?? false,
      parentDeathSignal: 'SIGKILL',
    });
    try {
      await candidate.start();
      server = candidate;
    } catch (error) {
      await candidate.kill();
      if (attempt < 5 && BIND_FAILURE.test(candidate.recentOutput())) continue;
      await tempDir.remove();
      throw error;
    }
  }
  const redis = server;
  let destroyed = false;
  const assertUsable = (): void => {
    if (destroyed) throw new Error('this Redis server was destroyed');
  };

  return {
    url: redis.url,
    port: redis.port,
    stop: () => redis.stop(),
    async start() {
      assertUsable();
      await redis.start();
    },
    async restartEmpty() {
      assertUsable();
      await redis.stop();
      for (const entry of await readdir(tempDir.path)) await rm(path.join(tempDir.path, entry), { recursive: true, force: true });
      await redis.start();
    },
    kill: () => redis.kill(),
    pause() {
      if (redis.pid !== undefined) process.kill(redis.pid, 'SIGSTOP');
    },
    resume() {
      if (redis.pid !== undefined) process.kill(redis.pid, 'SIGCONT');
    },
    async destroy() {
      if (redis.pid !== undefined) process.kill(redis.pid, 'SIGCONT');
      if (destroyed) return;
      destroyed = true;
      await redis.stop();
      await tempDir.remove();
    },
  };
}
