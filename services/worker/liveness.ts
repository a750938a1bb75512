import type { Metrics } from '../core/metrics';
import { redisAnswersNewConnection } from '../core/queue/connection';

/** The loop's blocking connection, as far as the probe needs it (BullMQ hands it out as its own client type). */
export interface BlockingClient {
  get(key: string): Promise<unknown>;
}

/** What the worker's /healthz reports. Only `stuck` fails it. */
export type Liveness = 'alive' | 'waiting for redis' | 'stuck';

export interface LoopLivenessOptions {
  redisUrl: string;
  /** BullMQ key prefix: the probe's key shares the queue's hash slot. */
  prefix: string;
  /** How often the blocking connection is probed while the loop is quiet. */
  probeEveryMs: number;
  metrics?: Metrics;
}

/**
 * Whether the worker's loop moves and, when it does not, whether a restart would help.
 * The loop shows progress through BullMQ's events and through a command on its blocking
 * connection, which Redis answers only once the pending blocking wait returns. A loop that
 * stays silent while Redis answers a new connection is stuck on a connection of its own (a
 * half-open socket after a failover, say): a restart fixes that. A loop silent because
 * Redis answers no one is waiting out an outage no restart ends, and restarting every
 * worker at once would only add a reconnect storm when Redis returns.
 */
export class LoopLiveness {
  private lastActivity = Date.now();
  private probing = false;
  private checkingRedis = false;
  /** The last look at Redis through a new connection, taken while the loop was silent. */
  private lastRedisCheck: { at: number; answered: boolean } | undefined;

  constructor(private readonly options: LoopLivenessOptions) {}

  /** The loop moved: a job started or finished, the queue drained, or a probe came back. */
  touch(): void {
    this.lastActivity = Date.now();
    this.options.metrics?.workerLastActivity.set(this.lastActivity / 1_000);
  }

  /** Silent for no longer than `maxSilenceMs`. */
  isAlive(maxSilenceMs: number): boolean {
    return Date.now() - this.lastActivity <= maxSilenceMs;
  }

  liveness(maxSilenceMs: number): Liveness {
    if (this.isAlive(maxSilenceMs)) return 'alive';
    const check = this.lastRedisCheck;
    // Only a look taken during this silence, and recently, speaks for it.
    const current = check !== undefined && check.at > this.lastActivity && Date.now() - check.at <= maxSilenceMs;
    return current && !check.answered ? 'waiting for redis' : 'stuck';
  }

  /**
   * One probe round, on a timer: a command on the blocking connection, and while the loop
   * has missed two rounds, a look at whether Redis answers anyone.
   */
  probe(blockingClient: Promise<BlockingClient> | undefined): void {
    if (blockingClient && !this.probing) {
      this.probing = true;
      blockingClient
        .then((client) => client.get(`${this.options.prefix}:liveness-probe`))
        .then(() => this.touch())
        .catch(() => undefined)
        .finally(() => {
          this.probing = false;
        });
    }
    const silentMs = Date.now() - this.lastActivity;
    if (silentMs > 2 * this.options.probeEveryMs && !this.checkingRedis) {
      this.checkingRedis = true;
      void redisAnswersNewConnection(this.options.redisUrl, this.options.probeEveryMs)
        .then((answered) => {
          this.lastRedisCheck = { at: Date.now(), answered };
        })
        .finally(() => {
          this.checkingRedis = false;
        });
    }
  }
}
