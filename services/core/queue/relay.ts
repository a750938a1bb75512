import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import { QUEUES, RETENTION, STALL_SETTINGS } from '../../contract';
import { findStaleQueued, findStaleRunning, reclaimLostRunning, type JobRow, type Keyset } from '../db/jobs';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { withTimeout } from '../timeout';
import { bullJobKey } from './keys';

/** What a BullMQ job carries: everything the worker needs, so the hot path reads no row. */
export interface QueueJobData {
  jobId: string;
  ownerId: string;
  type: string;
  input: unknown;
  requestId: string | null;
  /** The attempt this delivery runs (1-based). The row's `attempts` is the last one started. */
  attempt: number;
  /** When the job was accepted (ms since the epoch), for the time-to-start metric. */
  submittedAt: number;
}

export interface RelayOptions {
  /** BullMQ key prefix (QUEUE_PREFIX). */
  prefix: string;
  /** Queued rows younger than this are left to the in-process hand-off. Default 2 s. */
  sweepGraceMs?: number;
  /** Rows read and checked against Redis per round trip. Default 1,000. */
  sweepPageSize?: number;
  /** Rows checked per sweep at most, so a huge backlog costs a bounded sweep. Default 50,000. */
  sweepMaxRows?: number;
  /**
   * A running row unchanged this long whose Redis job is gone (or finished) lost its
   * attempt: worker and Redis state both died. Default lock duration + stalled interval.
   */
  lostRunningAfterMs?: number;
  /** A hand-off to Redis slower than this is abandoned to the sweep. Default 5 s. */
  enqueueTimeoutMs?: number;
}

export interface SweepReport {
  /** False when another process holds the sweep lock and this call did nothing. */
  ran: boolean;
  checked: number;
  /** Queued rows Redis did not hold, handed over again. */
  requeued: number;
  /** Running rows whose attempt was lost, queued again or dead-lettered. */
  reclaimed: number;
  /** Age of the oldest queued row Redis did not hold, in seconds (0 when none). */
  lagSeconds: number;
}

/** Arbitrary but fixed: one sweeper at a time across every api and worker process. */
const SWEEP_LOCK_KEY = 7_203_114_521;

type RedisJobState = 'missing' | 'finished' | 'held';

export function toQueueJobData(row: JobRow): QueueJobData {
  return {
    jobId: row.id,
    ownerId: row.owner_id,
    type: row.type,
    input: row.input,
    requestId: row.request_id,
    attempt: row.attempts + 1,
    submittedAt: row.created_at.getTime(),
  };
}

/**
 * Hands committed job rows to BullMQ, and repairs what the hand-off missed.
 *
 * Ownership of retries: PostgreSQL (attempts, max_attempts) and our runner own attempts
 * and backoff; every BullMQ job has `attempts: 1`. The runner schedules a retry by moving
 * the same BullMQ job to `delayed`, so the BullMQ job id stays the row id for the job's
 * whole life and every enqueue is idempotent (BullMQ ignores an add whose id exists).
 */
export class Relay {
  readonly queue: Queue<QueueJobData, unknown, string>;
  private readonly options: Required<RelayOptions>;
  private readonly connection: Redis;
  private readonly pool: Pool;
  private readonly log: Logger;
  private readonly metrics: Metrics | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping: Promise<SweepReport> | undefined;
  private closing: Promise<void> | undefined;

  constructor(deps: { connection: Redis; pool: Pool; log: Logger; metrics?: Metrics }, options: RelayOptions) {
    this.options = {
      sweepGraceMs: 2_000,
      sweepPageSize: 1_000,
      sweepMaxRows: 50_000,
      lostRunningAfterMs: STALL_SETTINGS.lockDurationMs + STALL_SETTINGS.stalledIntervalMs,
      enqueueTimeoutMs: 5_000,
      ...options,
    };
    this.connection = deps.connection;
    this.pool = deps.pool;
    this.log = deps.log;
    this.metrics = deps.metrics;
    this.queue = new Queue<QueueJobData, unknown, string>(QUEUES.jobs, {
      connection: deps.connection,
      prefix: options.prefix,
      defaultJobOptions: this.jobOptions(),
      streams: { events: { maxLen: RETENTION.eventsMaxLen } },
    });
    // Connection errors are reported once per outage by the connection itself.
    this.queue.on('error', (error) => this.log.debug({ err: error }, 'relay queue error'));
  }

  /**
   * Hands committed rows to BullMQ in one addBulk. Never throws: a row that does not make
   * it (Redis down, slow or restarted) stays queued in PostgreSQL and the sweep enqueues it.
   */
  async enqueue(rows: JobRow[], path: 'submit' | 'sweep' | 'requeue' = 'submit'): Promise<number> {
    if (rows.length === 0) return 0;
    try {
      await this.withTimeout(
        this.queue.addBulk(rows.map((row) => ({ name: row.type, data: toQueueJobData(row), opts: this.jobOptions(row) }))),
        'addBulk',
      );
      this.metrics?.relayEnqueued.inc({ path }, rows.length);
      return rows.length;
    } catch (error) {
      this.log.warn({ err: error, jobs: rows.length, path }, 'enqueue failed; the relay sweep will hand these jobs over');
      return 0;
    }
  }

  /**
   * Enqueues a job that was queued again (retry, replay, reclaim). BullMQ still holds its
   * finished previous run under the same id, which would swallow the add: remove it first.
   */
  async requeue(rows: JobRow[], path: 'requeue' | 'sweep' = 'requeue'): Promise<number> {
    if (rows.length === 0) return 0;
    try {
      const states = await this.redisStates(rows.map((row) => row.id));
      await Promise.all(rows.filter((row) => states.get(row.id) === 'finished').map((row) => this.queue.remove(row.id)));
    } catch (error) {
      this.log.warn({ err: error, jobs: rows.length }, 'could not clear finished BullMQ jobs before re-enqueue; the sweep will retry');
      return 0;
    }
    return this.enqueue(rows, path);
  }

  /** Removes a waiting or delayed job from BullMQ. False when it is missing or a worker holds it. */
  async remove(jobId: string): Promise<boolean> {
    try {
      return (await this.withTimeout(this.queue.remove(jobId), 'remove')) === 1;
    } catch (error) {
      this.log.warn({ err: error, jobId }, 'could not remove job from BullMQ');
      return false;
    }
  }

  /**
   * Finds queued rows Redis does not hold (lost hand-off, Redis restarted empty, failover)
   * and hands them over again; and running rows whose worker and Redis job are both gone,
   * which it queues again (or dead-letters when their attempts are spent). Only one
   * process sweeps at a time (advisory lock); the adds are idempotent anyway.
   */
  sweep(): Promise<SweepReport> {
    this.sweeping ??= this.sweepUnderLock().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  /** The relay lag without repairing anything (queue stats, doctor). Read-only, so it needs no lock. */
  async measureLagSeconds(): Promise<number> {
    return (await this.sweepQueued('measure')).lagSeconds;
  }

  startSweeper(intervalMs: number): void {
    if (this.sweeper || this.closing) return;
    this.sweeper = setInterval(() => {
      this.sweep().catch((error: unknown) => this.log.warn({ err: error }, 'relay sweep failed'));
    }, intervalMs);
    this.sweeper.unref();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.sweeper) clearInterval(this.sweeper);
      this.sweeper = undefined;
      await this.sweeping?.catch(() => undefined);
      await this.queue.close();
    })();
    return this.closing;
  }

  private jobOptions(row?: JobRow): JobsOptions {
    // Built up, not spread: `{ ...(cond && …), attempts }` costs ~3 µs per job on Node 20.
    const options: JobsOptions = { attempts: 1, removeOnComplete: { ...RETENTION.completed }, removeOnFail: { ...RETENTION.failed } };
    if (row) options.jobId = row.id;
    if (row && row.priority > 0) options.priority = row.priority;
    return options;
  }

  private async sweepUnderLock(): Promise<SweepReport> {
    const client = await this.pool.connect();
    try {
      const locked = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [SWEEP_LOCK_KEY]);
      if (!locked.rows[0]?.locked) return { ran: false, checked: 0, requeued: 0, reclaimed: 0, lagSeconds: 0 };
      try {
        const queued = await this.sweepQueued('repair');
        const reclaimed = await this.reclaimLostRunning();
        const report = { ran: true, ...queued, reclaimed };
        this.metrics?.relayLag.set(report.lagSeconds);
        if (report.requeued > 0 || report.reclaimed > 0) this.log.warn(report, 'relay sweep handed over jobs Redis did not hold');
        return report;
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [SWEEP_LOCK_KEY]);
      }
    } finally {
      client.release();
    }
  }

  private async sweepQueued(mode: 'repair' | 'measure'): Promise<{ checked: number; requeued: number; lagSeconds: number }> {
    let checked = 0;
    let requeued = 0;
    let oldestMissingUs: number | undefined;
    let after: Keyset | undefined;
    while (checked < this.options.sweepMaxRows) {
      const rows = await findStaleQueued(this.pool, this.options.sweepGraceMs, this.options.sweepPageSize, after);
      if (rows.length === 0) break;
      checked += rows.length;
      const last = rows[rows.length - 1] as (typeof rows)[number];
      after = { at: last.updated_us, id: last.id };
      const states = await this.redisStates(rows.map((row) => row.id));
      const notHeld = rows.filter((row) => states.get(row.id) !== 'held');
      if (notHeld.length > 0) oldestMissingUs ??= (notHeld[0] as (typeof notHeld)[number]).updated_us;
      if (mode === 'repair') requeued += await this.requeue(notHeld, 'sweep');
      if (rows.length < this.options.sweepPageSize) break;
    }
    const lagSeconds = oldestMissingUs === undefined ? 0 : Math.max(0, Date.now() / 1_000 - oldestMissingUs / 1_000_000);
    return { checked, requeued, lagSeconds };
  }

  private async reclaimLostRunning(): Promise<number> {
    const running = await findStaleRunning(this.pool, this.options.lostRunningAfterMs, this.options.sweepPageSize);
    if (running.length === 0) return 0;
    const states = await this.redisStates(running.map((row) => row.id));
    const lost = running.filter((row) => states.get(row.id) !== 'held');
    const reclaimed = await reclaimLostRunning(
      this.pool,
      lost.map((row) => ({ id: row.id, attempts: row.attempts })),
      'attempt lost: worker and queue entry gone',
    );
    const requeuedIds = new Set(reclaimed.filter((row) => row.status === 'queued').map((row) => row.id));
    await this.requeue(
      lost.filter((row) => requeuedIds.has(row.id)),
      'sweep',
    );
    return reclaimed.length;
  }

  /** Where each job stands in Redis, in one pipelined round trip. */
  private async redisStates(jobIds: string[]): Promise<Map<string, RedisJobState>> {
    const pipeline = this.connection.pipeline();
    for (const id of jobIds) pipeline.hmget(bullJobKey(this.options.prefix, id), 'timestamp', 'finishedOn');
    const replies = (await this.withTimeout(pipeline.exec(), 'job state lookup')) ?? [];
    const states = new Map<string, RedisJobState>();
    jobIds.forEach((id, index) => {
      const [error, value] = replies[index] ?? [new Error('no reply'), null];
      if (error) throw error;
      const [timestamp, finishedOn] = value as [string | null, string | null];
      states.set(id, timestamp === null ? 'missing' : finishedOn !== null ? 'finished' : 'held');
    });
    return states;
  }

  private withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
    const ms = this.options.enqueueTimeoutMs;
    return withTimeout(promise, ms, `Redis ${what} timed out after ${ms} ms`);
  }
}
