/**
 * The private Redis's URL is what `npm start` writes to .data/cli.env as REDIS_URL: the
 * services (ioredis, BullMQ) connect with it, and so should an operator's
 * `redis-cli -u "$REDIS_URL"`.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { findExecutable } from '../../services/local/child';
import { RedisServer } from '../../services/local/redis';
import { findFreePort } from '../harness/free-port';
import { createServerTempDir, type ServerTempDir } from '../harness/temp-dirs';

const run = promisify(execFile);

describe.each([
  ['a generated password (base64url)', randomBytes(48).toString('base64url')],
  ['a password with characters a URL must percent-encode', 'p@ss:w%rd/+?#&='],
])("the private Redis's URL, with %s", (_, password) => {
  let dir: ServerTempDir;
  let server: RedisServer;

  beforeAll(async () => {
    dir = await createServerTempDir('redis');
    server = new RedisServer({ port: await findFreePort(), dir: dir.path, appendonly: false, password });
    await server.start();
  });
  afterAll(async () => {
    await server?.stop();
    await dir?.remove();
  });

  it('lets ioredis (and so BullMQ) in', async () => {
    const redis = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      await redis.connect();
      expect(await redis.ping()).toBe('PONG');
    } finally {
      redis.disconnect();
    }
  });

  it('lets redis-cli -u in', async () => {
    const redisCli = findExecutable('redis-cli');
    if (!redisCli) throw new Error('redis-cli is not on PATH (it comes with redis-server: apt-get install redis-tools)');
    const { stdout, stderr } = await run(redisCli, ['--no-auth-warning', '-u', server.url, 'PING']);
    expect({ stdout: stdout.trim(), stderr }).toEqual({ stdout: 'PONG', stderr: '' });
  });
});
