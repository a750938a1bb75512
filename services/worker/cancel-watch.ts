import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import { findCancelled } from '../core/db/jobs';
import type { Logger } from '../core/logger';
import { createRedisConnection } from '../core/queue/connection';
import { cancelChannel } from '../core/queue/keys';
import { ChannelSubscription } from '../core/queue/subscription';
import type { JobExecutor } from './job-executor';

export interface CancelWatchOptions {
  redisUrl: string;
  /** BullMQ key prefix (QUEUE_PREFIX), which names the cancel channel. */
  prefix: string;
  /** How often the jobs running here are looked up in PostgreSQL for a cancel the channel did not bring. */
  checkEveryMs: number;
  /** Runs the look-ups of cancelled jobs (a statement over several ids, see createGeneralPool). */
  generalPool: Pool;
  /** The deliveries running here, which a cancel aborts. */
  runs: Pick<JobExecutor, 'abort' | 'runningJobIds'>;
  log: Logger;
}

/**
 * How a cancel reaches the runs of its job in this worker. A cancel is announced on a Redis
 * channel, once: one published while Redis answered no one (paused, partitioned: the
 * subscription never drops, so nothing resubscribes) or before a reconnect resubscribed
 * reached no worker, and the job would run to its end holding its slot. PostgreSQL has
 * every cancel, so the jobs running here are also looked up there once subscribed again,
 * and every checkEveryMs.
 */
export class CancelWatch {
  private subscriber: Redis | undefined;
  private subscription: ChannelSubscription | undefined;
  private checkTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: CancelWatchOptions) {}

  /**
   * Subscribes to the cancel channel and starts the periodic look; resolves once subscribed.
   * While Redis is away that waits for it: a worker starting then waits, as one already
   * running does, instead of exiting into an orchestrator's growing back-off.
   */
  async start(): Promise<void> {
    const { options } = this;
    this.checkTimer = setInterval(() => void this.abortCancelledMeanwhile('debug'), options.checkEveryMs);
    this.checkTimer.unref();
    this.subscriber = createRedisConnection(options.redisUrl, 'subscriber', options.log);
    this.subscriber.on('message', (_channel: string, jobId: string) => options.runs.abort(jobId, 'cancelled'));
    this.subscription = new ChannelSubscription(this.subscriber, cancelChannel(options.prefix), {
      log: options.log,
      what: "the worker's cancel channel",
      onSubscribed: () => void this.abortCancelledMeanwhile(),
    });
    await this.subscription.subscribed;
  }

  /** Stops the periodic look; cancels on the channel still arrive until close(). */
  stopChecking(): void {
    if (this.checkTimer) clearInterval(this.checkTimer);
  }

  close(): void {
    this.stopChecking();
    this.subscription?.close();
    this.subscriber?.disconnect();
  }

  /** Asks PostgreSQL which of the jobs running here were cancelled, and stops them. */
  private async abortCancelledMeanwhile(failureLevel: 'warn' | 'debug' = 'warn'): Promise<void> {
    const { runs, generalPool, log } = this.options;
    const running = runs.runningJobIds();
    if (running.length === 0) return;
    try {
      for (const jobId of await findCancelled(generalPool, running)) runs.abort(jobId, 'cancelled');
    } catch (error) {
      // The periodic look says nothing of a failure: PostgreSQL being away is logged where it matters, and the next look comes soon.
      log[failureLevel]({ err: error, running: running.length }, 'could not look for jobs cancelled while the cancel channel was not subscribed; such a job runs on, and its result is discarded');
    }
  }
}
