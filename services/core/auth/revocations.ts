import type { Redis } from 'ioredis';
import type { Logger } from '../logger';
import { ChannelSubscription } from '../queue/subscription';
import { withTimeout } from '../timeout';
import { CLOCK_TOLERANCE_SECONDS } from './tokens';

/**
 * The access-token denylist. An access token is revoked by its `jti` (logout), by its
 * session (`sid`: logout, reuse of a rotated refresh token, password reset, role change),
 * or by the signing key that signed it (`kid`: a key rotated out by `platform keys rotate`),
 * until the moment every token it could cover has expired anyway.
 *
 * Redis holds the list (a sorted set scored by that moment) and announces each change on
 * one channel. Every API process keeps a mirror of the list in memory, so checking a token
 * on the request path costs a map lookup and no network round trip: every authenticated
 * request, job submission included, goes through that check.
 */
export type RevokedKind = 'token' | 'session' | 'key';
const REVOKED_KINDS: readonly string[] = ['token', 'session', 'key'] satisfies RevokedKind[];

export interface Revocation {
  kind: RevokedKind;
  id: string;
  /**
   * Unix seconds when every token it covers has expired (their latest `exp`). The entry matters
   * CLOCK_TOLERANCE_SECONDS longer: a verifier accepts a token that long past its `exp`.
   */
  until: number;
}

/** The last Unix second an entry with this `until` still matters. */
const standsUntil = (until: number) => until + CLOCK_TOLERANCE_SECONDS;
/** Entries whose `until` is at or before this no longer matter. */
const lapsedBy = (nowSeconds: number) => nowSeconds - CLOCK_TOLERANCE_SECONDS;

const member = (kind: RevokedKind, id: string) => `${kind}:${id}`;

export function denylistKeys(prefix: string): { list: string; channel: string } {
  return { list: `${prefix}:auth:denylist`, channel: `${prefix}:auth:denylist:changes` };
}

/** Writes revocations: to the sorted set first, then announced, so a process that misses the message finds it on its next reload. */
export async function publishRevocations(redis: Redis, prefix: string, revocations: Revocation[]): Promise<void> {
  if (revocations.length === 0) return;
  const { list, channel } = denylistKeys(prefix);
  const now = Math.floor(Date.now() / 1000);
  const scored = revocations.flatMap((revocation) => [revocation.until, member(revocation.kind, revocation.id)]);
  await redis.multi().zadd(list, ...scored).zremrangebyscore(list, '-inf', lapsedBy(now)).exec();
  await redis.publish(channel, JSON.stringify(revocations));
}

export interface RevocationMirrorOptions {
  /** A connection of its own: a subscribed connection can run no other command. */
  subscriber: Redis;
  /** Reads the sorted set when (re)subscribing. */
  client: Redis;
  prefix: string;
  /**
   * The durable record of revoked sessions (PostgreSQL), merged into every reload, so a
   * Redis that restarted empty does not un-revoke a session.
   */
  durable: () => Promise<Revocation[]>;
  /**
   * Called when a signing key is newly revoked: the process reloads its keys, so it stops
   * signing with one it would refuse, without waiting for its periodic refresh.
   */
  onKeyRevoked?: () => void;
  log: Logger;
}

const PRUNE_INTERVAL_MS = 60_000;
/** How long start() waits for the first SUBSCRIBE before it loads without it (Redis away at start). */
const FIRST_SUBSCRIBE_WAIT_MS = 2_000;

/**
 * One API process's in-memory copy of the denylist, kept current by ONE pub/sub
 * subscription per process. It is reloaded in full each time the subscription is
 * (re)established: messages published while the connection was down are never
 * delivered, and the reload covers them. Entries are only ever added (and dropped once
 * expired), so a message that overlaps a reload does no harm.
 */
export class RevocationMirror {
  /** Member (`token:<jti>`, `session:<sid>`, `key:<kid>`) to the last Unix second it matters (standsUntil). */
  private readonly revoked = new Map<string, number>();
  private readonly listeners = new Set<() => void>();
  private pruneTimer: NodeJS.Timeout | undefined;
  private loaded = false;
  /** A key revocation was added since the last announce(). */
  private keyRevoked = false;
  private subscription: ChannelSubscription | undefined;
  /** The reload the latest answered SUBSCRIBE started. */
  private loading: Promise<void> | undefined;

  constructor(private readonly options: RevocationMirrorOptions) {}

  /**
   * Subscribes and loads; resolves after the first load. With Redis away it loads what
   * PostgreSQL holds and goes on; the subscription and a full load follow when Redis answers.
   */
  async start(): Promise<void> {
    const { subscriber, log } = this.options;
    const { channel } = denylistKeys(this.options.prefix);
    subscriber.on('message', (from: string, message: string) => {
      if (from === channel) this.apply(message);
    });
    // Each answered SUBSCRIBE, the first and each after a reconnect, reloads: what was
    // announced while this process was not subscribed is in the sorted set.
    this.subscription = new ChannelSubscription(subscriber, channel, {
      log,
      what: "the token denylist's changes",
      onSubscribed: () => {
        this.loading = this.reload();
      },
    });
    try {
      await withTimeout(this.subscription.subscribed, FIRST_SUBSCRIBE_WAIT_MS, 'Redis did not answer the SUBSCRIBE');
    } catch (error) {
      log.warn({ err: error }, 'the denylist is not subscribed yet; it subscribes and reloads when Redis answers');
    }
    await (this.loading ?? this.reload());
    this.pruneTimer = setInterval(() => this.prune(), PRUNE_INTERVAL_MS);
    this.pruneTimer.unref();
  }

  /** Whether the token (by jti), its session (by sid) or its signing key (by kid) is revoked. Map lookups: this runs on every authenticated request. */
  isRevoked(tokenId: string, sessionId: string, kid: string): boolean {
    const now = Date.now() / 1000;
    const stands = (key: string) => {
      const until = this.revoked.get(key);
      return until !== undefined && until > now;
    };
    return stands(member('token', tokenId)) || stands(member('session', sessionId)) || stands(member('key', kid));
  }

  /** Adds revocations this process made itself, without waiting for its own message to come back. */
  add(revocations: Revocation[]): void {
    for (const revocation of revocations) this.set(member(revocation.kind, revocation.id), revocation.until);
    this.announce();
  }

  /**
   * Calls `listener` each time entries may have been added (by this process, a message or a
   * reload), so what outlives a request (an event stream) can end when its token is revoked.
   * Returns the unsubscribe.
   */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get ready(): boolean {
    return this.loaded;
  }

  close(): void {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.subscription?.close();
  }

  async reload(): Promise<void> {
    const { client, durable, log } = this.options;
    const now = Math.floor(Date.now() / 1000);
    const [fromRedis, fromDatabase] = await Promise.allSettled([
      client.zrangebyscore(denylistKeys(this.options.prefix).list, lapsedBy(now), '+inf', 'WITHSCORES'),
      durable(),
    ]);
    if (fromRedis.status === 'fulfilled') {
      const flat = fromRedis.value;
      for (let index = 0; index + 1 < flat.length; index += 2) this.set(flat[index] as string, Number(flat[index + 1]));
    } else log.warn({ err: fromRedis.reason }, 'could not load the denylist from Redis; retried on reconnect');
    if (fromDatabase.status === 'fulfilled') this.add(fromDatabase.value);
    else log.warn({ err: fromDatabase.reason }, 'could not load revoked sessions from PostgreSQL');
    this.loaded = this.loaded || fromRedis.status === 'fulfilled';
    this.announce();
  }

  private apply(message: string): void {
    try {
      const revocations = JSON.parse(message) as unknown;
      if (!Array.isArray(revocations)) return;
      for (const entry of revocations as Partial<Revocation>[]) {
        if (typeof entry.kind === 'string' && REVOKED_KINDS.includes(entry.kind) && typeof entry.id === 'string' && typeof entry.until === 'number') {
          this.set(member(entry.kind, entry.id), entry.until);
        }
      }
      this.announce();
    } catch (error) {
      this.options.log.warn({ err: error }, 'ignored a malformed denylist message');
    }
  }

  private announce(): void {
    if (this.keyRevoked) {
      this.keyRevoked = false;
      this.options.onKeyRevoked?.();
    }
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch (error) {
        this.options.log.error({ err: error }, 'a denylist listener failed');
      }
    }
  }

  /** Holds the entry until it stops mattering (standsUntil), which isRevoked and prune compare with now. */
  private set(key: string, until: number): void {
    const held = this.revoked.get(key);
    const stands = standsUntil(until);
    if (held === undefined || held < stands) this.revoked.set(key, stands);
    if (held === undefined && key.startsWith('key:')) this.keyRevoked = true;
  }

  private prune(): void {
    const now = Date.now() / 1000;
    for (const [key, until] of this.revoked) if (until <= now) this.revoked.delete(key);
  }
}
