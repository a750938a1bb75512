/**
 * A subscriber connection stays subscribed through reconnects without ever leaving a
 * rejected promise unhandled. ioredis's own resubscribe (autoResubscribe) sends its
 * SUBSCRIBE with nobody handling a failure: a connection closed (a shutdown) right after a
 * reconnect, before Redis's answer was read, rejected "Connection is closed." unhandled,
 * which ends a Node process without a handler of its own (the API), and failed a worker
 * test in CI. A SUBSCRIBE that failed while Redis was down at start was never sent again,
 * so an API started during an outage never heard of another process's revocations.
 * A SUBSCRIBE that timed out (the connection's 2 s) on a connection still up was never
 * answered for the subscription, though Redis subscribed it: a worker never started after a
 * stall of Redis (found by an outside walk through a proxy holding the first SUBSCRIBE 3 s).
 * A SUBSCRIBE sent into a half-open socket is never answered: the connection is made again.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { publishRevocations, RevocationMirror } from '../../../services/core/auth/revocations';
import { createLogger } from '../../../services/core/logger';
import { createRedisConnection } from '../../../services/core/queue/connection';
import { ChannelSubscription } from '../../../services/core/queue/subscription';
import { nodeArgsFor } from '../../harness/compiled-children';
import { startRedis, type RedisServer } from '../../harness/redis';
import { waitFor } from './fixture';

const log = createLogger({ service: 'test', level: 'silent' });

/**
 * A TCP proxy to Redis that can turn the connections it carries now into half-open ones:
 * they stay up, and what the client sends on them goes nowhere, as through a NAT or a
 * load balancer that dropped the flow. Connections made later are carried as before.
 */
async function startProxy(redisPort: number) {
  const carried = new Set<net.Socket>();
  const swallowing = new WeakSet<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(redisPort, '127.0.0.1');
    carried.add(client);
    client.on('data', (chunk) => {
      if (!swallowing.has(client)) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => client.write(chunk));
    const end = () => {
      carried.delete(client);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    halfOpenTheCarried: () => carried.forEach((client) => swallowing.add(client)),
    close: () => {
      carried.forEach((client) => client.destroy());
      server.close();
    },
  };
}

describe('a subscriber connection across reconnects', () => {
  let redis: RedisServer;
  const opened: Redis[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const connection of opened) connection.disconnect();
    await redis.destroy();
  });

  const connect = (role: 'subscriber' | 'client') => {
    const connection = createRedisConnection(redis.url, role);
    opened.push(connection);
    return connection;
  };
  /** Publishes until `received` says a message arrived: a subscription can lag its 'ready'. */
  const heard = async (channel: string, received: () => boolean) => {
    const publisher = connect('client');
    await waitFor(`a message on ${channel}`, async () => {
      await publisher.publish(channel, 'ping');
      return received();
    });
  };

  it('a connection closed with its SUBSCRIBE unanswered, right after a reconnect, leaves no rejection unhandled', async () => {
    // In a process of its own: there an unhandled rejection ends the process, as it would the API.
    const child = spawn(process.execPath, nodeArgsFor(path.join(__dirname, 'subscriber-shutdown-child.ts')), { env: { PATH: process.env.PATH, REDIS_URL: redis.url }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect({ code, output }).toEqual({ code: 0, output: 'closed, nothing unhandled\n' });
  }, 30_000);

  it('is subscribed again after Redis restarts, and says so each time Redis answers a SUBSCRIBE', async () => {
    const subscriber = connect('subscriber');
    let messages = 0;
    subscriber.on('message', () => (messages += 1));
    let answered = 0;
    const subscription = new ChannelSubscription(subscriber, 'pk-test:restart', { log, what: 'a test channel', onSubscribed: () => (answered += 1) });
    await subscription.subscribed;
    expect(answered).toBe(1);

    await redis.stop();
    await redis.start();
    await waitFor('the SUBSCRIBE after the restart', async () => answered === 2);
    const before = messages;
    await heard('pk-test:restart', () => messages > before);
    subscription.close();
  });

  it('started while Redis is down, subscribes once Redis answers; closed first, it stops waiting', async () => {
    await redis.stop();
    const late = connect('subscriber');
    let messages = 0;
    late.on('message', () => (messages += 1));
    const subscription = new ChannelSubscription(late, 'pk-test:late', { log, what: 'a test channel' });
    const never = new ChannelSubscription(connect('subscriber'), 'pk-test:never', { log, what: 'a test channel' });
    never.close();
    await expect(never.subscribed).rejects.toThrow('the Redis connection closed before it subscribed to a test channel');
    await redis.start();

    await subscription.subscribed;
    await heard('pk-test:late', () => messages > 0);
    subscription.close();
  });

  it('a SUBSCRIBE that Redis answers late, after a stall of 3 s, still subscribes; the wait and the recovery are said', async () => {
    const subscriber = connect('subscriber');
    let messages = 0;
    subscriber.on('message', () => (messages += 1));
    await waitFor('the connection', async () => subscriber.status === 'ready');
    const lines: { msg: string }[] = [];
    const recording = createLogger({ service: 'test', level: 'info', destination: { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) } });
    redis.pause();
    let subscription: ChannelSubscription;
    try {
      subscription = new ChannelSubscription(subscriber, 'pk-test:stall', { log: recording, what: 'a test channel', slowAfterMs: 1_000 });
      // Past the 2 s the subscriber connection gave a command: that SUBSCRIBE failed, and its late answer went unheard.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
    } finally {
      redis.resume();
    }
    await subscription.subscribed;
    expect(lines.map((line) => line.msg)).toEqual(['Redis has not answered the SUBSCRIBE to a test channel for 1 s; still waiting', 'Redis answers: subscribed to a test channel']);
    await heard('pk-test:stall', () => messages > 0);
    subscription.close();
  }, 30_000);

  it('a SUBSCRIBE sent into a half-open socket is given up with its connection, and answered on a new one', async () => {
    const proxy = await startProxy(redis.port);
    const url = new URL(redis.url);
    url.port = String(proxy.port);
    const subscriber = createRedisConnection(url.toString(), 'subscriber');
    opened.push(subscriber);
    let messages = 0;
    subscriber.on('message', () => (messages += 1));
    await waitFor('the connection', async () => subscriber.status === 'ready');
    const lines: { msg: string }[] = [];
    const recording = createLogger({ service: 'test', level: 'info', destination: { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) } });
    proxy.halfOpenTheCarried();

    const subscription = new ChannelSubscription(subscriber, 'pk-test:half-open', { log: recording, what: 'a test channel', slowAfterMs: 500, reconnectAfterMs: 1_500 });
    try {
      await waitFor('the subscription', async () => lines.some((line) => line.msg === 'Redis answers: subscribed to a test channel'), 10_000);
      expect(lines.map((line) => line.msg)).toEqual([
        'Redis has not answered the SUBSCRIBE to a test channel for 0.5 s; still waiting',
        'Redis has not answered the SUBSCRIBE to a test channel for 1.5 s; connecting again',
        'Redis answers: subscribed to a test channel',
      ]);
      await subscription.subscribed;
      await heard('pk-test:half-open', () => messages > 0);
    } finally {
      subscription.close();
      proxy.close();
    }
  }, 30_000);

  it('a SUBSCRIBE refused on a connection that stays up is asked again, and the recovery is said', async () => {
    const admin = connect('client');
    await admin.call('ACL', 'SETUSER', 'pk-listener', 'on', '>listener-password', 'resetchannels', '+@all');
    const lines: { msg: string }[] = [];
    const recording = createLogger({ service: 'test', level: 'info', destination: { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) } });
    const url = new URL(redis.url);
    url.username = 'pk-listener';
    url.password = 'listener-password';
    const subscriber = createRedisConnection(url.toString(), 'subscriber');
    opened.push(subscriber);
    const subscription = new ChannelSubscription(subscriber, 'pk-test:acl', { log: recording, what: 'a test channel' });

    await waitFor('the refusal to be said', async () => lines.some((line) => line.msg === 'Redis refused the SUBSCRIBE to a test channel; asking again'));
    // The operator grants the channel; the next ask, on the same connection, is answered.
    await admin.call('ACL', 'SETUSER', 'pk-listener', '&pk-test:*');
    await subscription.subscribed;
    expect(lines.map((line) => line.msg).at(-1)).toBe('Redis answers: subscribed to a test channel');
    expect(subscriber.status).toBe('ready');
    subscription.close();
  }, 30_000);

  it("an API process's denylist started while Redis is down learns of revocations made elsewhere once Redis is back", async () => {
    await redis.stop();
    const mirror = new RevocationMirror({ subscriber: connect('subscriber'), client: connect('client'), prefix: 'pk-test', durable: async () => [], log });
    await mirror.start();
    await redis.start();

    // Another API process revokes a session: written to the sorted set and announced.
    const other = connect('client');
    const until = Math.floor(Date.now() / 1000) + 600;
    await waitFor('the mirror to hear a revocation made elsewhere', async () => {
      await publishRevocations(other, 'pk-test', [{ kind: 'session', id: `s-${Date.now()}`, until }]);
      await publishRevocations(other, 'pk-test', [{ kind: 'token', id: 'announced-late', until }]);
      return mirror.isRevoked('announced-late', 'none', 'none');
    });
    // Announced after the mirror subscribed: heard as a message, not only from a reload.
    const reloads = jest.spyOn(mirror, 'reload');
    await publishRevocations(other, 'pk-test', [{ kind: 'token', id: 'heard', until }]);
    await waitFor('the announcement', async () => mirror.isRevoked('heard', 'none', 'none'));
    expect(reloads).not.toHaveBeenCalled();
    mirror.close();
  });
});
