import type { Redis } from 'ioredis';
import type { Logger } from '../logger';

export interface ChannelSubscriptionOptions {
  log: Logger;
  /** What is subscribed to, in log lines: "to {what}". */
  what: string;
  /**
   * Called each time Redis answers a SUBSCRIBE: the first, and each after a reconnect.
   * Messages published while the connection was down are lost, so a subscriber that keeps
   * state reloads it here.
   */
  onSubscribed?: () => void;
  /** How long a SUBSCRIBE may go unanswered before a warning says so (tests shorten it). */
  slowAfterMs?: number;
  /** How long a SUBSCRIBE may go unanswered before its connection is made again (tests shorten it). */
  reconnectAfterMs?: number;
}

/** A SUBSCRIBE unanswered this long on a live connection (Redis stalled, a half-open socket) is worth a warning. */
const SLOW_SUBSCRIBE_MS = 5_000;
/**
 * A SUBSCRIBE unanswered this long is given up with its connection, which ioredis makes
 * again: a half-open socket (a peer gone without a FIN, a proxy or NAT that dropped the
 * flow) never answers, and no command of ours would tell, since a subscriber sends nothing
 * else. A stalled Redis costs only a reconnect, which waits for it as the SUBSCRIBE did.
 */
const RECONNECT_AFTER_MS = 15_000;

/** How a refused SUBSCRIBE is asked again: one more step per try, up to the cap. */
const RETRY_STEP_MS = 500;
const RETRY_MAX_MS = 5_000;

/**
 * Keeps a subscriber connection (createRedisConnection's `subscriber` role) subscribed to
 * one channel, through every reconnect.
 *
 * ioredis can do this itself (autoResubscribe), but it sends that SUBSCRIBE without
 * handling its failure (fixed upstream by redis/ioredis#2187, in no release up to 6.0.0):
 * a connection that drops again, or is closed at shutdown, before Redis answers rejects it
 * with nobody listening, and an unhandled rejection ends a Node process. So subscriber
 * connections are made with autoResubscribe off and subscribe here, on every `ready`,
 * with the failure handled: a SUBSCRIBE lost with its connection is sent again on the
 * next `ready`, and one refused on a connection still up (an ACL's NOPERM, say) is sent
 * again on it, backing off, with a warning each time. One never answered gives up its
 * connection for a new one (RECONNECT_AFTER_MS).
 */
export class ChannelSubscription {
  /** Settles once Redis first answers the SUBSCRIBE, or rejects when the connection ends before it does. */
  readonly subscribed: Promise<void>;
  private answered = false;
  /** A warning said the channel is not subscribed; the next answer says it is again. */
  private warned = false;
  private closed = false;
  /** SUBSCRIBEs refused on a connection that stayed up, since the last answer. */
  private refused = 0;
  private retry: NodeJS.Timeout | undefined;
  private settleFirst!: { resolve: () => void; reject: (error: Error) => void };

  constructor(
    private readonly connection: Redis,
    private readonly channel: string,
    private readonly options: ChannelSubscriptionOptions,
  ) {
    this.subscribed = new Promise<void>((resolve, reject) => {
      this.settleFirst = { resolve, reject };
    });
    // Whoever awaits it may stop waiting (a shutdown); the rejection is theirs to see, not unhandled.
    this.subscribed.catch(() => undefined);
    connection.on('ready', this.subscribe);
    connection.on('error', this.noteWaiting);
    connection.once('end', this.ended);
    // A 'ready' that fires from now on is a connection not yet subscribed; one already ready was before this.
    if (connection.status === 'ready') this.subscribe();
  }

  /** Stops resubscribing (the connection is being closed); an unanswered first SUBSCRIBE rejects `subscribed`. */
  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.connection.off('ready', this.subscribe);
    this.connection.off('error', this.noteWaiting);
    this.connection.off('end', this.ended);
    this.ended();
  }

  private readonly subscribe = (): void => {
    clearTimeout(this.retry);
    this.retry = undefined;
    const slowAfterMs = this.options.slowAfterMs ?? SLOW_SUBSCRIBE_MS;
    // No timeout fails the command (its late answer would go unheard); this only says it is late.
    const slow = setTimeout(() => {
      if (this.closed) return;
      this.warned = true;
      this.options.log.warn({ channel: this.channel, waitedMs: slowAfterMs }, `Redis has not answered the SUBSCRIBE to ${this.options.what} for ${slowAfterMs / 1000} s; still waiting`);
    }, slowAfterMs);
    slow.unref();
    const reconnectAfterMs = this.options.reconnectAfterMs ?? RECONNECT_AFTER_MS;
    const stuck = setTimeout(() => {
      if (this.closed || this.connection.status !== 'ready') return;
      this.warned = true;
      this.options.log.warn({ channel: this.channel, waitedMs: reconnectAfterMs }, `Redis has not answered the SUBSCRIBE to ${this.options.what} for ${reconnectAfterMs / 1000} s; connecting again`);
      // The unanswered SUBSCRIBE rejects with the connection; the next 'ready' subscribes again.
      this.connection.disconnect(true);
    }, reconnectAfterMs);
    stuck.unref();
    const answered = this.connection.subscribe(this.channel);
    void answered
      .finally(() => {
        clearTimeout(slow);
        clearTimeout(stuck);
      })
      .catch(() => undefined);
    answered.then(
      () => {
        this.refused = 0;
        if (this.warned) this.options.log.info({ channel: this.channel }, `Redis answers: subscribed to ${this.options.what}`);
        this.warned = false;
        this.options.onSubscribed?.();
        if (this.answered) return;
        this.answered = true;
        this.settleFirst.resolve();
      },
      (error: unknown) => {
        if (this.closed) return;
        if (this.connection.status !== 'ready') {
          // The connection went before the answer; its next 'ready' subscribes again.
          this.options.log.debug({ err: error, channel: this.channel }, `SUBSCRIBE to ${this.options.what} lost with its connection; sent again when it is back`);
          return;
        }
        // Still connected, and refused. SUBSCRIBE is idempotent, so ask again.
        this.refused += 1;
        this.warned = true;
        const delayMs = Math.min(this.refused * RETRY_STEP_MS, RETRY_MAX_MS);
        this.options.log.warn({ err: error, channel: this.channel, attempts: this.refused, retryInMs: delayMs }, `Redis refused the SUBSCRIBE to ${this.options.what}; asking again`);
        this.retry = setTimeout(this.subscribe, delayMs);
        this.retry.unref();
      },
    );
  };

  private readonly noteWaiting = (error: Error): void => {
    if (this.warned) return;
    this.warned = true;
    this.options.log.warn({ err: error, channel: this.channel }, `not subscribed to ${this.options.what} while Redis does not answer; subscribing again when it does`);
  };

  private readonly ended = (): void => {
    if (!this.answered) this.settleFirst.reject(new Error(`the Redis connection closed before it subscribed to ${this.options.what}`));
  };
}
