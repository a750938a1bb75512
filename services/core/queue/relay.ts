import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import { findJobType, QUEUES, RETENTION, STALL_SETTINGS } from '../../contract';
import { MicroBatcher } from '../batcher';
import { applyTransitions, findStaleQueued, findStaleRunning, type EventRow, type Keyset, type QueueEntryRow, type TransitionRow } from '../db/jobs';
import { followParentMoves } from '../jobs/fanout';
import {
  attemptsAfter,
  auditDetail,
  crashLoopReason,
  deferralsAfter,
  deferralsExhaustedReason,
  eventForLostAttempt,
  isTerminalStatus,
  LOST_ATTEMPT_DEPENDENCY,
  LOST_ATTEMPT_REASON,
  MOVES,
  type AuditContext,
} from '../jobs/lifecycle';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { withTimeout } from '../timeout';
import { pruneSharedEntries, readEntriesAddedAt, readJobStates, type RedisJobState } from './job-states';
import { SHARED_ENTRY_ID_PREFIX, sharedEntriesKey } from './keys';

/**
 * What a queue entry carries: job ids and nothing else. Type, owner and input live in
 * PostgreSQL, where the worker reads them, so Redis memory does not grow with payloads and
 * nothing a worker runs comes from Redis.
 *
 * A job's own entry has the job's id as its BullMQ id. `crashes` counts the runs of the job
 * that ended with their worker before this entry existed (it was split out of a shared
 * entry that was redelivered), so a crash loop ends after the same number of runs either way.
 */
export interface OwnEntryData {
  jobId: string;
  crashes?: number;
}

/**
 * Jobs of a type that declares jobsPerQueueEntry > 1, submitted together: one entry, whose
 * BullMQ id is SHARED_ENTRY_ID_PREFIX and the first job's id. Each job of it that must be
 * queued again (a retry, a release, a redelivery after a crash) gets an entry of its own.
 */
export interface SharedEntryData {
  jobIds: string[];
}

export type QueueJobData = OwnEntryData | SharedEntryData;

/** How a job queued again gets its entry: after a delay (a retry's backoff), and with the crashes of its earlier runs. */
export interface RequeueOptions {
  delayMs?: number;
  crashes?: number;
  /**
   * Wait (up to heldEntryWaitMs) for a worker still holding the job's own entry to let go of
   * it before adding the new one: for a job an owner or operator queued again the moment it
   * failed or was cancelled, whose last delivery has not finished its entry yet (BullMQ
   * ignores an add while the id exists). The worker's own requeues pass nothing: they hold
   * the entry themselves, or another delivery of the job runs.
   */
  waitForHolder?: boolean;
}

/** What the relay needs of a row to hand it to BullMQ. */
export type EnqueueRow = Pick<QueueEntryRow, 'id' | 'type' | 'priority'>;

export interface RelayOptions {
  /** BullMQ key prefix (QUEUE_PREFIX). */
  prefix: string;
  /** Queued rows younger than this are left to the in-process hand-off. Default 2 s. */
  sweepGraceMs?: number;
  /** Rows read and checked against Redis per round trip. Default 1,000. */
  sweepPageSize?: number;
  /**
   * Rows checked per sweep at most, so a huge backlog costs a bounded sweep; the next sweep
   * goes on from the row where this one stopped, so every row is checked in turn. Default 50,000.
   */
  sweepMaxRows?: number;
  /**
   * A running row unchanged this long whose Redis job is gone (or finished) lost its
   * attempt: worker and Redis state both died. Default lock duration + stalled interval.
   */
  lostRunningAfterMs?: number;
  /** A hand-off to Redis slower than this is abandoned to the sweep. Default 5 s. */
  enqueueTimeoutMs?: number;
  /**
   * How long a requeue with waitForHolder waits for a worker to let go of the job's entry;
   * past it the add is left as it goes (the sweep hands the job over if it was swallowed).
   * Default 2 s: a delivery that has written its outcome finishes its entry within
   * milliseconds, and one obeying a cancel within one signal.
   */
  heldEntryWaitMs?: number;
  /**
   * How long a submitted row waits for others before they go to BullMQ together
   * (handOff). Default 10 ms: a few milliseconds more before a job can start, and no
   * submitter waits for it; 0 hands each batch over on its own.
   */
  handOffWindowMs?: number;
  /**
   * Rows waiting for a hand-off at most. While Redis is slow or away, rows past this are
   * left to the sweep (they are committed and queued in PostgreSQL) instead of piling up in
   * memory. Default 20,000.
   */
  maxWaitingHandOffs?: number;
  /**
   * How long a lag this process measured stays exported (platform_relay_lag_seconds).
   * Default three sweep intervals (15 s when this process runs no sweeper).
   */
  lagFreshForMs?: number;
}

export interface SweepReport {
  /** False when another process holds the sweep lock and this call did nothing. */
  ran: boolean;
  checked: number;
  /**
   * True when this sweep reached the newest stale queued row: it and the sweeps since the
   * last one that did looked at every row once (one sweep unless the backlog is past sweepMaxRows).
   */
  passEnded: boolean;
  /**
   * Queued rows Redis did not hold at this sweep for the first time: most are still on
   * their way (the in-process hand-off is behind under load), so they are only noted.
   */
  pending: number;
  /** Queued rows Redis did not hold at two looks in a row (two sweeps, or two passes over a backlog past sweepMaxRows), unchanged in between: lost, and handed over again. */
  requeued: number;
  /** Running rows whose attempt was lost (worker and Redis job both gone): queued again, the attempt not charged (a deferral, not a retry). */
  retried: number;
  /** Running rows whose attempt was lost with no deferral left (MAX_DEFERRALS spent; attempts do not matter): abandoned, in the dead-letter set. */
  failed: number;
  /** Rows BullMQ gave up on as crash loops, dead-lettered. */
  abandoned: number;
  /** Age of the oldest queued row Redis did not hold, in seconds (0 when none). */
  lagSeconds: number;
}

/** How often a requeue that waits for a worker to let go of an entry looks again. */
const HELD_ENTRY_POLL_MS = 20;

/** Rows handed to BullMQ per addBulk at most, and addBulks of handed-off rows running at once. */
const HAND_OFF_BATCH = 1_000;
const HAND_OFF_IN_FLIGHT = 2;

/** Suspects held at most, as a multiple of sweepMaxRows: memory stays bounded whatever Redis lost. */
const SUSPECTS_PER_SWEEP_ROWS = 2;

/**
 * How much earlier than its row's last queuing a crash-looped entry must have been added to
 * count as an earlier run's: the clocks of the processes and of PostgreSQL may differ by this
 * much (platform doctor fails a database clock off by half of it).
 */
const ENTRY_CLOCK_MARGIN_MS = 1_000;

/** Arbitrary but fixed: one sweeper at a time across every api and worker process. */
export const SWEEP_LOCK_KEY = 7_203_114_521;
/** A measured lag stays exported this many sweep intervals: a process that keeps winning the sweep lock never drops it between scrapes. */
const LAG_FRESH_SWEEPS = 3;
const DEFAULT_LAG_FRESH_MS = 15_000;

/**
 * Redis could not say which of the sweep's rows it holds. None of them can be shown handed
 * over, so the lag is the age of the oldest of them (`oldestUnconfirmedUs`, µs since epoch).
 */
class RedisStatesUnavailableError extends Error {
  constructor(
    readonly oldestUnconfirmedUs: number,
    options: { cause: unknown },
  ) {
    super(`Redis could not be asked which queued jobs it holds: ${options.cause instanceof Error ? options.cause.message : String(options.cause)}`, options);
    this.name = this.constructor.name;
  }
}

/**
 * Hands committed job rows to BullMQ, and repairs what the hand-off missed.
 *
 * Ownership of retries: PostgreSQL (attempts, max_attempts) and the lifecycle own attempts
 * and backoff; every BullMQ job has `attempts: 1`. The runner schedules a retry by moving
 * a job's own entry to `delayed`, or by giving a job of a shared entry an entry of its own,
 * delayed; so a BullMQ id names the same job (or jobs) for the entry's whole life and every
 * enqueue is idempotent (BullMQ ignores an add whose id exists).
 */
export class Relay {
  readonly queue: Queue<QueueJobData, unknown, string>;
  private readonly options: Required<Omit<RelayOptions, 'lagFreshForMs'>> & Pick<RelayOptions, 'lagFreshForMs'>;
  private readonly connection: Redis;
  private readonly generalPool: Pool;
  private readonly log: Logger;
  private readonly metrics: Metrics | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private sweepIntervalMs: number | undefined;
  private sweeping: Promise<SweepReport> | undefined;
  private closing: Promise<void> | undefined;
  /**
   * Queued rows a sweep found missing from Redis, with their updated_at (µs) and the pass
   * that noted them: lost if the next look at them finds them so again, unchanged. A pass
   * is one walk over every stale queued row, one sweep unless the backlog is past sweepMaxRows.
   */
  private readonly suspects = new Map<string, { updatedUs: number; pass: number }>();
  private pass = 0;
  /** Where the next sweep's walk goes on from; undefined: from the oldest row. */
  private passCursor: Keyset | undefined;
  /** Where the next sweep goes on pruning the shared-entry map from ('0': the start). */
  private pruneCursor = '0';
  /** Rows of the submit path gathered into fewer, larger addBulks (see handOff). */
  private readonly handOffs: MicroBatcher<EnqueueRow, void>;
  private handOffsOverflowing = false;
  /**
   * Enqueues that failed since the last that succeeded. While Redis is away every submit
   * batch fails: the first failure is a warning, the rest are counted and said when Redis
   * takes an enqueue again, so an outage costs the log two lines, not one per batch.
   */
  private failedEnqueues = { batches: 0, jobs: 0 };
  /** Periodic sweeps that failed since the last that succeeded: said as the enqueues' are, once when the first fails and once when one succeeds again. */
  private failedSweeps = 0;

  constructor(deps: { connection: Redis; generalPool: Pool; log: Logger; metrics?: Metrics }, options: RelayOptions) {
    this.options = {
      sweepGraceMs: 2_000,
      sweepPageSize: 1_000,
      sweepMaxRows: 50_000,
      lostRunningAfterMs: STALL_SETTINGS.lockDurationMs + STALL_SETTINGS.stalledIntervalMs,
      enqueueTimeoutMs: 5_000,
      heldEntryWaitMs: 2_000,
      handOffWindowMs: 10,
      maxWaitingHandOffs: 20_000,
      ...options,
    };
    this.connection = deps.connection;
    this.generalPool = deps.generalPool;
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
    this.handOffs = new MicroBatcher<EnqueueRow, void>({
      name: 'relay hand-off',
      windowMs: this.options.handOffWindowMs,
      maxBatch: HAND_OFF_BATCH,
      maxInFlight: HAND_OFF_IN_FLIGHT,
      run: async (rows) => {
        await this.enqueue(rows, 'submit');
        return rows.map(() => ({ status: 'fulfilled', value: undefined }));
      },
    });
  }

  /**
   * Hands rows the submit path just committed to BullMQ without making anyone wait: rows
   * committed within handOffWindowMs of each other go in one addBulk. At a moderate rate
   * each submit batch holds a job or two, and an addBulk, the worker's wake-up and its
   * state writes per job or two cost several times what they cost per job in bulk
   * (bench/FINDINGS.md). A row that does not make it (Redis away, this process stopping)
   * stays queued in PostgreSQL and the sweep hands it over.
   */
  handOff(rows: readonly EnqueueRow[]): void {
    if (this.handOffs.backlog + rows.length > this.options.maxWaitingHandOffs) {
      // Once per episode: while Redis is away this would be every submit batch.
      if (!this.handOffsOverflowing) this.log.warn({ waiting: this.handOffs.backlog }, 'hand-off backlog full; the relay sweep will hand the jobs over');
      this.handOffsOverflowing = true;
      return;
    }
    this.handOffsOverflowing = false;
    for (const row of rows) {
      this.handOffs.add(row).catch((error: unknown) => this.log.debug({ err: error, jobId: row.id }, 'hand-off skipped; the relay sweep will hand this job over'));
    }
  }

  /**
   * Hands committed rows to BullMQ in one addBulk. Never throws: a row that does not make
   * it (Redis down, slow or restarted) stays queued in PostgreSQL and the sweep enqueues it.
   * On the submit path, jobs of a type that declares jobsPerQueueEntry > 1 share entries;
   * every other path gives each job an entry of its own.
   */
  async enqueue(rows: readonly EnqueueRow[], path: 'submit' | 'sweep' | 'requeue' = 'submit', options: RequeueOptions = {}): Promise<number> {
    if (rows.length === 0) return 0;
    const entries = path === 'submit' ? shareEntries(rows) : rows.map((row) => [row]);
    const sharedBy = entries.filter((jobs) => jobs.length > 1).flatMap((jobs) => jobs.flatMap((row) => [row.id, sharedEntryId(jobs)]));
    try {
      await this.withinEnqueueTimeout(this.queue.addBulk(entries.map((jobs) => this.entry(jobs, options))), 'addBulk');
    } catch (error) {
      if (this.failedEnqueues.batches === 0) {
        this.log.warn({ err: error, jobs: rows.length, path }, 'enqueue failed; the relay sweep will hand these jobs over (further failures are counted until an enqueue succeeds)');
      } else {
        this.log.debug({ err: error, jobs: rows.length, path }, 'enqueue failed; the relay sweep will hand these jobs over');
      }
      this.failedEnqueues = { batches: this.failedEnqueues.batches + 1, jobs: this.failedEnqueues.jobs + rows.length };
      return 0;
    }
    if (this.failedEnqueues.batches > 0) {
      this.log.info({ failedBatches: this.failedEnqueues.batches, failedJobs: this.failedEnqueues.jobs }, 'enqueue succeeds again; the jobs of the failed ones are the relay sweep\'s');
      this.failedEnqueues = { batches: 0, jobs: 0 };
    }
    this.metrics?.relayEnqueued.inc({ path }, rows.length);
    // The map goes after the entries, so a field always names an entry that exists (pruneSharedEntries relies on it).
    // A job the sweep finds without it is noted only; if the map never makes it, the sweep's
    // second look hands the job over in an entry of its own: delivered twice, completed once.
    if (sharedBy.length > 0) {
      await this.withinEnqueueTimeout(this.connection.hset(sharedEntriesKey(this.options.prefix), ...sharedBy), 'shared entry map').catch((error: unknown) => {
        this.log.warn({ err: error, jobs: sharedBy.length / 2 }, 'could not note which entries carry these jobs; the relay sweep will hand them over again');
      });
    }
    return rows.length;
  }

  /**
   * Enqueues a job that was queued again (retry, replay, reclaim, a job split out of a
   * shared entry), each in an entry of its own. BullMQ still holds its finished previous
   * run under the same id, which would swallow the add: remove it first. An entry a worker
   * still holds (active) would swallow it too, and then finish; with waitForHolder the
   * requeue waits for the worker to let go of it first.
   */
  async requeue(rows: readonly EnqueueRow[], path: 'requeue' | 'sweep' = 'requeue', options: RequeueOptions = {}): Promise<number> {
    if (rows.length === 0) return 0;
    try {
      const ids = rows.map((row) => row.id);
      let states = await this.redisStates(ids);
      if (options.waitForHolder && (await this.untilHoldersLetGo(ids.filter((id) => states.get(id) === 'held')))) states = await this.redisStates(ids);
      await Promise.all(rows.filter((row) => isFinished(states.get(row.id))).map((row) => this.queue.remove(row.id)));
    } catch (error) {
      this.log.warn({ err: error, jobs: rows.length }, 'could not clear finished BullMQ jobs before re-enqueue; the sweep will retry');
      return 0;
    }
    return this.enqueue(rows, path, options);
  }

  /**
   * Forgets which shared entry carried these jobs, once the entry is done with them (each
   * finished, or queued again in an entry of its own). Throws when Redis cannot be reached;
   * the sweep prunes what is left of entries that are done.
   */
  async forgetSharedEntry(jobIds: readonly string[]): Promise<void> {
    if (jobIds.length === 0) return;
    await this.withinEnqueueTimeout(this.connection.hdel(sharedEntriesKey(this.options.prefix), ...jobIds), 'shared entry map');
  }

  /** Moves a delayed entry to the queue now. False when it is no longer delayed (its time came, or it was taken) or Redis did not answer. */
  async promote(entryId: string): Promise<boolean> {
    try {
      const entry = await this.withinEnqueueTimeout(this.queue.getJob(entryId), 'getJob');
      if (!entry || !(await this.withinEnqueueTimeout(entry.isDelayed(), 'state'))) return false;
      await this.withinEnqueueTimeout(entry.promote(), 'promote');
      return true;
    } catch (error) {
      this.log.debug({ err: error, entryId }, 'could not promote a delayed entry; it comes back when its delay ends');
      return false;
    }
  }

  /**
   * Waits, up to heldEntryWaitMs, until no worker holds the own entries of these jobs
   * (BullMQ's active state); a job carried by a shared entry has none to wait for. Answers
   * whether any was held, so its state is worth reading again.
   */
  private async untilHoldersLetGo(jobIds: readonly string[]): Promise<boolean> {
    const deadline = Date.now() + this.options.heldEntryWaitMs;
    let held = jobIds;
    let waited = false;
    for (;;) {
      const states = await Promise.all(held.map((id) => this.withinEnqueueTimeout(this.queue.getJobState(id), 'job state')));
      held = held.filter((_id, index) => states[index] === 'active');
      if (held.length === 0 || Date.now() >= deadline) return waited;
      waited = true;
      await new Promise((resolve) => setTimeout(resolve, HELD_ENTRY_POLL_MS));
    }
  }

  /** Removes a waiting or delayed job from BullMQ (one it does not hold counts as removed). False when a worker holds it, or Redis did not answer. */
  async remove(jobId: string): Promise<boolean> {
    try {
      return (await this.withinEnqueueTimeout(this.queue.remove(jobId), 'remove')) === 1;
    } catch (error) {
      this.log.warn({ err: error, jobId }, 'could not remove job from BullMQ');
      return false;
    }
  }

  /**
   * Finds queued rows Redis does not hold and hands them over again once they are lost (not
   * merely not added yet: see SweepReport.pending); takes back running rows whose worker and
   * Redis job are both gone; and dead-letters rows BullMQ gave up on as crash loops. Only
   * one process sweeps at a time (advisory lock); the adds are idempotent anyway.
   */
  sweep(): Promise<SweepReport> {
    this.sweeping ??= this.sweepUnderLock().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  /** The relay lag without repairing anything (queue stats, doctor). Read-only, so it needs no lock. */
  async measureLagSeconds(): Promise<number> {
    const { lagSeconds } = await this.measuringLag(() => this.sweepQueued('measure'));
    return lagSeconds;
  }

  startSweeper(intervalMs: number): void {
    if (this.sweeper || this.closing) return;
    this.sweepIntervalMs = intervalMs;
    this.sweeper = setInterval(() => {
      // A sweep still waiting on a slow or hung Redis belongs to the tick that started it:
      // a tick that joined it would log its failure once more.
      if (this.sweeping) return;
      this.sweep().then(
        () => {
          if (this.failedSweeps === 0) return;
          this.log.info({ failedSweeps: this.failedSweeps }, 'relay sweep succeeds again');
          this.failedSweeps = 0;
        },
        (error: unknown) => {
          if (this.failedSweeps === 0) this.log.warn({ err: error }, 'relay sweep failed (further failures are counted until a sweep succeeds)');
          else this.log.debug({ err: error }, 'relay sweep failed');
          this.failedSweeps += 1;
        },
      );
    }, intervalMs);
    this.sweeper.unref();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.sweeper) clearInterval(this.sweeper);
      this.sweeper = undefined;
      await this.handOffs.close();
      await this.sweeping?.catch(() => undefined);
      await this.queue.close();
    })();
    return this.closing;
  }

  private jobOptions(): JobsOptions {
    return { attempts: 1, removeOnComplete: RETENTION.completed, removeOnFail: { ...RETENTION.failed } };
  }

  /** The addBulk item of an entry carrying `jobs` (all of one type and priority). */
  private entry(jobs: readonly EnqueueRow[], { delayMs, crashes }: RequeueOptions): { name: string; data: QueueJobData; opts: JobsOptions } {
    const first = jobs[0] as EnqueueRow;
    const opts = this.jobOptions();
    if (first.priority > 0) opts.priority = first.priority;
    if (delayMs !== undefined && delayMs > 0) opts.delay = delayMs;
    if (jobs.length > 1) {
      opts.jobId = sharedEntryId(jobs);
      return { name: first.type, data: { jobIds: jobs.map((row) => row.id) }, opts };
    }
    opts.jobId = first.id;
    const data: OwnEntryData = crashes ? { jobId: first.id, crashes } : { jobId: first.id };
    return { name: first.type, data, opts };
  }

  private async sweepUnderLock(): Promise<SweepReport> {
    const client = await this.generalPool.connect();
    // The sweep lock belongs to the session. A lock or unlock PostgreSQL did not answer (a
    // stalled server, past the pool's query_timeout) still takes or keeps it once the server
    // resumes: such a session is closed, which ends its locks, rather than pooled, where it
    // would hold the lock for as long as the pool keeps it and no other process could sweep.
    let unsound = false;
    const onLockSession = <T>(statement: Promise<T>): Promise<T> =>
      statement.catch((error: unknown) => {
        unsound = true;
        throw error;
      });
    try {
      const locked = await onLockSession(client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [SWEEP_LOCK_KEY]));
      if (!locked.rows[0]?.locked) return { ran: false, checked: 0, passEnded: false, pending: 0, requeued: 0, retried: 0, failed: 0, abandoned: 0, lagSeconds: 0 };
      try {
        const queued = await this.measuringLag(() => this.sweepQueued('repair'));
        const running = await this.reclaimLostRunning();
        await this.pruneSharedEntries();
        const report: SweepReport = { ran: true, ...queued, retried: running.retried, failed: running.failed, abandoned: queued.abandoned + running.abandoned };
        if (report.requeued > 0 || report.retried > 0 || report.failed > 0 || report.abandoned > 0) this.log.warn(report, 'relay sweep repaired jobs missing from Redis (never handed over, or lost by it)');
        return report;
      } finally {
        await onLockSession(client.query('SELECT pg_advisory_unlock($1)', [SWEEP_LOCK_KEY]));
      }
    } finally {
      // release(true) closes the connection rather than pooling it.
      client.release(unsound);
    }
  }

  /**
   * Runs a look at the queued rows and exports the lag it measured. Only a look that ran
   * measures: a process that lost the sweep lock, or whose PostgreSQL query failed, says
   * nothing and its series lapses. When Redis cannot be asked, the rows already read are
   * unconfirmed, and their age is exported as the lag (jobs are not reaching the queue).
   */
  private async measuringLag<T extends { lagSeconds: number }>(look: () => Promise<T>): Promise<T> {
    const freshForMs = this.options.lagFreshForMs ?? (this.sweepIntervalMs === undefined ? DEFAULT_LAG_FRESH_MS : LAG_FRESH_SWEEPS * this.sweepIntervalMs);
    try {
      const result = await look();
      this.metrics?.relayLag.record(result.lagSeconds, freshForMs);
      return result;
    } catch (error) {
      if (error instanceof RedisStatesUnavailableError) this.metrics?.relayLag.record(ageSeconds(error.oldestUnconfirmedUs), freshForMs);
      throw error;
    }
  }

  /**
   * Walks the stale queued rows oldest first, a page at a time, and asks Redis about each.
   * `measure` reads from the oldest row and changes nothing; `repair` goes on from where
   * the last sweep stopped and hands over the rows it finds lost.
   */
  private async sweepQueued(mode: 'repair' | 'measure'): Promise<{ checked: number; passEnded: boolean; pending: number; requeued: number; abandoned: number; lagSeconds: number }> {
    let checked = 0;
    let pending = 0;
    let requeued = 0;
    let abandoned = 0;
    let oldestMissingUs = Infinity;
    let after = mode === 'repair' ? this.passCursor : undefined;
    let walkedToTheEnd = false;
    while (checked < this.options.sweepMaxRows) {
      const rows = await findStaleQueued(this.generalPool, this.options.sweepGraceMs, this.options.sweepPageSize, after);
      if (rows.length === 0) {
        walkedToTheEnd = true;
        break;
      }
      checked += rows.length;
      const last = rows[rows.length - 1] as QueueEntryRow;
      after = { at: last.updated_us, id: last.id };
      const states = await this.redisStates(rows.map((row) => row.id)).catch((error: unknown) => {
        const knownMissingUs = mode === 'repair' ? this.oldestSuspectUs() : Infinity;
        throw new RedisStatesUnavailableError(Math.min(oldestMissingUs, knownMissingUs, (rows[0] as QueueEntryRow).updated_us), { cause: error });
      });
      for (const row of rows) {
        if (states.get(row.id) === 'held') continue;
        oldestMissingUs = Math.min(oldestMissingUs, row.updated_us);
      }
      if (mode === 'repair') {
        const outcome = await this.repairQueued(rows, states);
        pending += outcome.pending;
        requeued += outcome.requeued;
        abandoned += outcome.abandoned;
      }
      if (rows.length < this.options.sweepPageSize) {
        walkedToTheEnd = true;
        break;
      }
    }
    if (mode === 'repair') {
      this.passCursor = walkedToTheEnd ? undefined : after;
      if (walkedToTheEnd) this.endPass();
      // Rows found missing by earlier sweeps of this pass count towards the lag until looked at again.
      oldestMissingUs = Math.min(oldestMissingUs, this.oldestSuspectUs());
    }
    return { checked, passEnded: walkedToTheEnd, pending, requeued, abandoned, lagSeconds: oldestMissingUs === Infinity ? 0 : ageSeconds(oldestMissingUs) };
  }

  /** Notes rows missing for the first time, hands over those missing at two looks in a row, and dead-letters crash loops. */
  private async repairQueued(rows: QueueEntryRow[], states: Map<string, RedisJobState>): Promise<{ pending: number; requeued: number; abandoned: number }> {
    const crashLooped: QueueEntryRow[] = [];
    const lost: QueueEntryRow[] = [];
    let pending = 0;
    const leftBehind = await this.entriesOfEarlierRuns(rows.filter((row) => states.get(row.id) === 'crash-looped'));
    for (const row of rows) {
      // An entry left from an earlier run is finished business: the row is as good as missing.
      const state = leftBehind.has(row.id) ? 'finished' : states.get(row.id);
      const suspect = this.suspects.get(row.id);
      this.suspects.delete(row.id);
      if (state === 'held') continue;
      if (state === 'crash-looped') crashLooped.push(row);
      else if (suspect?.updatedUs === row.updated_us) lost.push(row);
      else {
        // Past the bound (Redis lost a backlog several sweeps long) a row is noted on a later pass, once earlier ones are handed over.
        if (this.suspects.size < SUSPECTS_PER_SWEEP_ROWS * this.options.sweepMaxRows) this.suspects.set(row.id, { updatedUs: row.updated_us, pass: this.pass });
        pending += 1;
      }
    }
    const abandoned = await this.abandon(crashLooped);
    const requeued = await this.requeue(lost, 'sweep');
    return { pending, requeued, abandoned };
  }

  /**
   * Of queued rows whose own entry BullMQ gave up on as a crash loop, those whose entry was
   * added well before the row was last queued. Such an entry belongs to a run before the
   * move that queued the row again: a replay whose hand-off Redis did not take (it was away)
   * leaves it behind, since the hand-off is what replaces it. Dead-lettering the row for it
   * would undo the replay without the job ever running. An entry added for the row's current
   * run is added after the commit that queued it; the margin covers the difference between
   * the clock of the process that added it and PostgreSQL's.
   */
  private async entriesOfEarlierRuns(crashLooped: QueueEntryRow[]): Promise<Set<string>> {
    if (crashLooped.length === 0) return new Set();
    const addedAt = await this.withinEnqueueTimeout(readEntriesAddedAt(this.connection, this.options.prefix, crashLooped.map((row) => row.id)), 'entry timestamps');
    const earlier = crashLooped.filter((row) => {
      const added = addedAt.get(row.id);
      return added !== undefined && added * 1_000 < row.updated_us - ENTRY_CLOCK_MARGIN_MS * 1_000;
    });
    return new Set(earlier.map((row) => row.id));
  }

  /** A pass walked every stale queued row: suspects it did not note again are no longer queued and stale. */
  private endPass(): void {
    for (const [id, { pass }] of this.suspects) if (pass < this.pass) this.suspects.delete(id);
    this.pass += 1;
  }

  private oldestSuspectUs(): number {
    let oldest = Infinity;
    for (const { updatedUs } of this.suspects.values()) oldest = Math.min(oldest, updatedUs);
    return oldest;
  }

  /** Drops a page of shared-entry map fields whose entry is done; a failure leaves them to the next sweep. */
  private async pruneSharedEntries(): Promise<void> {
    try {
      const { cursor, pruned } = await this.withinEnqueueTimeout(pruneSharedEntries(this.connection, this.options.prefix, this.pruneCursor, this.options.sweepPageSize), 'shared entry prune');
      this.pruneCursor = cursor;
      if (pruned > 0) this.log.debug({ pruned }, 'dropped shared-entry map fields of entries that are done');
    } catch (error) {
      this.log.debug({ err: error }, 'could not prune the shared-entry map; the next sweep will');
    }
  }

  /** Running rows whose worker and Redis job are both gone: the lifecycle defers them, the attempt not charged. */
  private async reclaimLostRunning(): Promise<{ retried: number; failed: number; abandoned: number }> {
    const running = await findStaleRunning(this.generalPool, this.options.lostRunningAfterMs, this.options.sweepPageSize);
    if (running.length === 0) return { retried: 0, failed: 0, abandoned: 0 };
    const states = await this.redisStates(running.map((row) => row.id));
    const abandoned = await this.abandon(running.filter((row) => states.get(row.id) === 'crash-looped'));
    const lost = running.filter((row) => states.get(row.id) === 'missing' || states.get(row.id) === 'finished');
    const decided = lost.map((row) => ({ row, audit: lostAttemptAudit(row) }));
    const applied = await this.applyRepairs(decided);
    // Only the rows whose move was written: another writer may have moved a row since it was read.
    const retried = decided.filter(({ row, audit }) => audit.event === 'defer' && applied.has(row.id)).map(({ row }) => row);
    // Counted as a worker counts the same events, so the deferrals and dead letters of lost attempts show on the dashboards too.
    for (const { row, audit } of decided) {
      if (!applied.has(row.id)) continue;
      if (audit.event === 'defer') this.metrics?.jobsDeferred.inc({ type: row.type, dependency: LOST_ATTEMPT_DEPENDENCY });
      else this.metrics?.jobsFailed.inc({ type: row.type });
    }
    await this.requeue(retried, 'sweep');
    return { retried: retried.length, failed: applied.size - retried.length, abandoned };
  }

  /** Dead-letters rows BullMQ stopped delivering because their runs kept ending with their worker. */
  private async abandon(rows: QueueEntryRow[]): Promise<number> {
    if (rows.length === 0) return 0;
    const reason = crashLoopReason(STALL_SETTINGS.maxStalledCount + 1);
    const applied = await this.applyRepairs(rows.map((row) => ({ row, audit: { event: 'abandon' as const, reason } })));
    for (const row of rows) if (applied.has(row.id)) this.metrics?.jobsFailed.inc({ type: row.type });
    return applied.size;
  }

  /**
   * Writes the sweep's decisions through the same conditional statement the workers use,
   * each only if its row has not moved since the sweep read it. The row's error and the
   * audit row's detail are what a worker's write of the same event stores.
   */
  private async applyRepairs(repairs: { row: QueueEntryRow; audit: RepairAudit }[]): Promise<Set<string>> {
    if (repairs.length === 0) return new Set();
    const now = Date.now();
    const rows: TransitionRow[] = repairs.map(({ row, audit }) => ({
      id: row.id,
      expected: MOVES[audit.event].from,
      status: MOVES[audit.event].to,
      attempt: row.attempts,
      attempts: attemptsAfter(audit.event, row.attempts),
      deferrals: deferralsAfter(audit.event, row.deferrals),
      error: audit.event === 'abandon' ? audit.reason : audit.error,
      finished_ms: isTerminalStatus(MOVES[audit.event].to) ? now : null,
      unchanged_since_us: row.updated_us,
    }));
    const events: EventRow[] = repairs.map(({ row, audit }) => ({
      job_id: row.id,
      from_status: row.status,
      to_status: MOVES[audit.event].to,
      attempt: row.attempts,
      detail: auditDetail(audit),
      at_ms: now,
    }));
    const written = await applyTransitions(this.generalPool, rows, events);
    await followParentMoves(written.parentMoves, { generalPool: this.generalPool, relay: this, log: this.log });
    return written.applied;
  }

  /** Where each job stands in Redis, bounded by the enqueue timeout. */
  private redisStates(jobIds: string[]): Promise<Map<string, RedisJobState>> {
    return this.withinEnqueueTimeout(readJobStates(this.connection, this.options.prefix, jobIds), 'job state lookup');
  }

  /** A Redis call bounded by enqueueTimeoutMs (withTimeout), rejected with an error naming `what`. */
  private withinEnqueueTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
    const ms = this.options.enqueueTimeoutMs;
    return withTimeout(promise, ms, `Redis ${what} timed out after ${ms} ms`);
  }
}

/** What the sweep writes for a row it repairs, as the lifecycle audits it. */
type RepairAudit = Extract<AuditContext, { event: 'defer' | 'abandon' }>;

/**
 * A lost attempt, recorded as a worker records one that failed on Redis; a deferral is
 * queued again at once (no backoff): the attempt was lost, not refused.
 */
function lostAttemptAudit(row: QueueEntryRow): RepairAudit {
  const failure = { dependency: LOST_ATTEMPT_DEPENDENCY, error: LOST_ATTEMPT_REASON };
  return eventForLostAttempt(row) === 'defer'
    ? { event: 'defer', attempt: row.attempts, ...failure, deferral: row.deferrals + 1, retryInMs: 0 }
    : { event: 'abandon', reason: deferralsExhaustedReason(row.deferrals, failure) };
}

/**
 * Rows in entries: jobs of one type and priority, in the order given, share an entry up to
 * their type's jobsPerQueueEntry; a type that is not declared (or declares 1) gets one per job.
 */
function shareEntries(rows: readonly EnqueueRow[]): EnqueueRow[][] {
  const entries: EnqueueRow[][] = [];
  const open = new Map<string, EnqueueRow[]>();
  for (const row of rows) {
    const perEntry = findJobType(row.type)?.jobsPerQueueEntry ?? 1;
    if (perEntry <= 1) {
      entries.push([row]);
      continue;
    }
    const key = `${row.type}/${row.priority}`;
    let entry = open.get(key);
    if (!entry || entry.length >= perEntry) {
      entry = [];
      open.set(key, entry);
      entries.push(entry);
    }
    entry.push(row);
  }
  return entries;
}

function sharedEntryId(jobs: readonly EnqueueRow[]): string {
  return `${SHARED_ENTRY_ID_PREFIX}${(jobs[0] as EnqueueRow).id}`;
}

/** Seconds since a time in µs since the epoch (a row's updated_us). */
function ageSeconds(us: number): number {
  return Math.max(0, Date.now() / 1_000 - us / 1_000_000);
}

function isFinished(state: RedisJobState | undefined): boolean {
  return state === 'finished' || state === 'crash-looped';
}
