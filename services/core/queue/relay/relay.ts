import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import { QUEUES, RETENTION } from '../../../contract';
import type { Logger } from '../../logger';
import type { Metrics } from '../../metrics';
import { entryOptions, type EnqueueRow, type QueueJobData, type RequeueOptions } from './entries';
import { Enqueuer, type EnqueuePath } from './enqueue';
import { HandOff } from './hand-off';
import { resolveRelayOptions, type RelayOptions } from './options';
import { Sweep, type SweepReport } from './sweep';
import { Sweeper } from './sweeper';

/**
 * Hands committed job rows to BullMQ, and repairs what the hand-off missed. One object per
 * process, over its parts: the submit path's hand-off (hand-off.ts), the adds, removes and
 * promotions of entries (enqueue.ts, entries.ts), and the sweep (sweep.ts and what it
 * runs), on a timer (sweeper.ts).
 *
 * Ownership of retries: PostgreSQL (attempts, max_attempts) and the lifecycle own attempts
 * and backoff; every BullMQ job has `attempts: 1`. The runner schedules a retry by moving
 * a job's own entry to `delayed`, or by giving a job of a shared entry an entry of its own,
 * delayed; so a BullMQ id names the same job (or jobs) for the entry's whole life and every
 * enqueue is idempotent (BullMQ ignores an add whose id exists).
 */
export class Relay {
  readonly queue: Queue<QueueJobData, unknown, string>;
  private readonly enqueuer: Enqueuer;
  private readonly handOffs: HandOff;
  private readonly sweeps: Sweep;
  private readonly sweeper: Sweeper;
  private closing: Promise<void> | undefined;

  constructor(deps: { connection: Redis; generalPool: Pool; log: Logger; metrics?: Metrics }, options: RelayOptions) {
    const resolved = resolveRelayOptions(options);
    this.queue = new Queue<QueueJobData, unknown, string>(QUEUES.jobs, {
      connection: deps.connection,
      prefix: options.prefix,
      defaultJobOptions: entryOptions(),
      streams: { events: { maxLen: RETENTION.eventsMaxLen } },
    });
    // Connection errors are reported once per outage by the connection itself.
    this.queue.on('error', (error) => deps.log.debug({ err: error }, 'relay queue error'));
    this.enqueuer = new Enqueuer({ queue: this.queue, connection: deps.connection, log: deps.log, metrics: deps.metrics }, resolved);
    this.handOffs = new HandOff(this.enqueuer, deps.log, resolved);
    this.sweeps = new Sweep({ generalPool: deps.generalPool, connection: deps.connection, enqueuer: this.enqueuer, log: deps.log, metrics: deps.metrics }, resolved);
    this.sweeper = new Sweeper(this.sweeps, deps.log);
  }

  /** Hands rows the submit path just committed to BullMQ without making anyone wait (see HandOff). */
  handOff(rows: readonly EnqueueRow[]): void {
    this.handOffs.add(rows);
  }

  /** See Enqueuer.enqueue. */
  enqueue(rows: readonly EnqueueRow[], path: EnqueuePath = 'submit', options: RequeueOptions = {}): Promise<number> {
    return this.enqueuer.enqueue(rows, path, options);
  }

  /** See Enqueuer.requeue. */
  requeue(rows: readonly EnqueueRow[], path: 'requeue' | 'sweep' = 'requeue', options: RequeueOptions = {}): Promise<number> {
    return this.enqueuer.requeue(rows, path, options);
  }

  /** See Enqueuer.forgetSharedEntry. */
  forgetSharedEntry(jobIds: readonly string[]): Promise<void> {
    return this.enqueuer.forgetSharedEntry(jobIds);
  }

  /** See Enqueuer.promote. */
  promote(entryId: string): Promise<boolean> {
    return this.enqueuer.promote(entryId);
  }

  /** See Enqueuer.remove. */
  remove(jobId: string): Promise<boolean> {
    return this.enqueuer.remove(jobId);
  }

  /** Runs a sweep now (see Sweep), or joins the one running. */
  sweep(): Promise<SweepReport> {
    return this.sweeps.run();
  }

  /** The relay lag without repairing anything (queue stats, doctor). */
  measureLagSeconds(): Promise<number> {
    return this.sweeps.measureLagSeconds();
  }

  startSweeper(intervalMs: number): void {
    if (this.closing) return;
    this.sweeper.start(intervalMs);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.sweeper.stop();
      await this.handOffs.close();
      await this.sweeps.settled();
      await this.queue.close();
    })();
    return this.closing;
  }
}
