import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../logger';
import { withTimeout } from '../timeout';

/**
 * What a connection is for decides how it behaves when Redis is away or stops answering:
 * - `worker`: BullMQ workers must wait out an outage and never give up on a command
 *   (BullMQ requires maxRetriesPerRequest: null). Its commands still time out, after
 *   longer than the longest blocking wait BullMQ issues (10 s), which the connection it
 *   duplicates for blocking commands inherits.
 * - `producer`: the API's enqueue path fails fast, so a Redis outage turns into
 *   "accepted, the relay will enqueue" instead of a hung request.
 * - `client`: health checks, rate limits, publishing, the CLI: bounded retries, and a
 *   short command timeout, so a Redis that hangs (stopped, partitioned) costs a request at
 *   most that long before it falls back (the rate limiter to its in-process counters).
 * - `subscriber`: the worker's cancel channel, the API's denylist changes, subscribed
 *   through a ChannelSubscription, which keeps it subscribed across reconnects. Its only
 *   command, SUBSCRIBE, has no timeout: Redis subscribes the connection whenever it gets to
 *   the command, and ioredis ignores the answer to a command it timed out, so a timeout
 *   would only make a late subscription look like none. A dropped connection fails it.
 */
export type ConnectionRole = 'worker' | 'producer' | 'client' | 'subscriber';

const COMMAND_TIMEOUT_MS: Record<ConnectionRole, number | undefined> = {
  worker: 15_000,
  producer: 5_000,
  client: 1_000,
  subscriber: undefined,
};

export function createRedisConnection(url: string, role: ConnectionRole, log?: Logger, connectionName?: string): Redis {
  const options: RedisOptions = {
    lazyConnect: false,
    // ioredis names the connection again after every reconnect (CLIENT SETNAME), so the name says whose it is for as long as it is connected.
    ...(connectionName !== undefined && { connectionName }),
    connectTimeout: 5_000,
    commandTimeout: COMMAND_TIMEOUT_MS[role],
    // Reconnect forever with a capped backoff: the outage ends, the process should not.
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    ...(role === 'worker' && { maxRetriesPerRequest: null, enableReadyCheck: true }),
    ...(role === 'producer' && { maxRetriesPerRequest: 1, enableOfflineQueue: false }),
    ...((role === 'client' || role === 'subscriber') && { maxRetriesPerRequest: 2 }),
    // ioredis's own resubscribe leaves its failure unhandled; a ChannelSubscription resubscribes instead.
    ...(role === 'subscriber' && { autoResubscribe: false }),
  };
  const connection = new Redis(url, options);
  let reported = false;
  connection.on('error', (error) => {
    // ioredis emits on every failed reconnect; one line per outage is enough.
    if (!reported) log?.warn({ err: error, role }, 'Redis connection error');
    reported = true;
  });
  connection.on('ready', () => {
    if (reported) log?.info({ role }, 'Redis connection restored');
    reported = false;
  });
  return connection;
}

/**
 * BullMQ loses locks and jobs when Redis evicts keys. Warn at startup when the server
 * would; returns the policy found (or undefined when it cannot be read, e.g. managed
 * Redis that forbids CONFIG).
 */
export async function checkMaxmemoryPolicy(connection: Redis, log: Logger): Promise<string | undefined> {
  try {
    const reply = (await connection.config('GET', 'maxmemory-policy')) as string[];
    const policy = reply[1];
    if (policy !== 'noeviction') {
      log.warn({ policy }, 'Redis maxmemory-policy is not noeviction: BullMQ may lose jobs under memory pressure');
    }
    return policy;
  } catch (error) {
    log.warn({ err: error }, 'could not read Redis maxmemory-policy (CONFIG may be disabled); make sure it is noeviction');
    return undefined;
  }
}

/**
 * Whether Redis answers a PING on a connection of its own within `timeoutMs`. It tells a
 * Redis that answers no one (down, stopped, partitioned) from a connection of ours that is
 * stuck while Redis serves everyone else. Never retries and never throws.
 */
export async function redisAnswersNewConnection(url: string, timeoutMs: number): Promise<boolean> {
  const connection = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    enableReadyCheck: false,
  });
  // A refused or timed-out connection is the answer, not an error to report.
  connection.on('error', () => undefined);
  try {
    // AUTH goes out as part of connecting; a server that takes the socket but never answers must not hold the check.
    const answered = (async () => {
      await connection.connect();
      return (await connection.ping()) === 'PONG';
    })();
    return await withTimeout(answered, timeoutMs, 'Redis did not answer a new connection');
  } catch {
    return false;
  } finally {
    connection.disconnect();
  }
}
