import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../../logger';
import type { Metrics } from '../../metrics';
import { OutageLog } from '../../outage-log';
import { readJobStates, type RedisJobState } from '../job-states';
import { sharedEntriesKey } from '../keys';
import { STALL_SETTINGS } from '../../../contract';
import { entryItem, runsOfGivenUpEntry, shareEntries, sharedEntryId, type EnqueueRow, type QueueJobData, type RequeueOptions } from './entries';
import { withinEnqueueTimeout, type ResolvedRelayOptions } from './options';

/** How often a requeue that waits for a worker to let go of an entry looks again. */
const HELD_ENTRY_POLL_MS = 20;

/** Who added an entry: the submit path's hand-off, the sweep, or a requeue. */
export type EnqueuePath = 'submit' | 'sweep' | 'requeue';

/**
 * The relay's writes to BullMQ: entries added, removed, promoted. Every enqueue is
 * idempotent (BullMQ ignores an add whose id exists), and none throws for Redis being
 * away: a row that does not make it stays queued in PostgreSQL for the sweep.
 */
export class Enqueuer {
  /** While Redis is away every submit batch's enqueue fails: said once an outage (see OutageLog). */
  private readonly failures: OutageLog;
  /** Jobs of the enqueues that failed since the last that succeeded. */
  private failedJobs = 0;

  constructor(
    private readonly deps: { queue: Queue<QueueJobData, unknown, string>; connection: Redis; log: Logger; metrics: Metrics | undefined },
    private readonly options: Pick<ResolvedRelayOptions, 'prefix' | 'enqueueTimeoutMs' | 'heldEntryWaitMs'>,
  ) {
    this.failures = new OutageLog(deps.log, {
      firstFailure: 'enqueue failed; the relay sweep will hand these jobs over (further failures are counted until an enqueue succeeds)',
      laterFailure: 'enqueue failed; the relay sweep will hand these jobs over',
      recovered: 'enqueue succeeds again; the jobs of the failed ones are the relay sweep\'s',
      countField: 'failedBatches',
    });
  }

  /**
   * Hands committed rows to BullMQ in one addBulk. Never throws: a row that does not make
   * it (Redis down, slow or restarted) stays queued in PostgreSQL and the sweep enqueues it.
   * On the submit path, jobs of a type that declares jobsPerQueueEntry > 1 share entries;
   * every other path gives each job an entry of its own.
   */
  async enqueue(rows: readonly EnqueueRow[], path: EnqueuePath = 'submit', options: RequeueOptions = {}): Promise<number> {
    if (rows.length === 0) return 0;
    const { log, metrics } = this.deps;
    const entries = path === 'submit' ? shareEntries(rows) : rows.map((row) => [row]);
    const sharedBy = entries.filter((jobs) => jobs.length > 1).flatMap((jobs) => jobs.flatMap((row) => [row.id, sharedEntryId(jobs)]));
    try {
      await this.withinTimeout(this.deps.queue.addBulk(entries.map((jobs) => entryItem(jobs, options))), 'addBulk');
    } catch (error) {
      this.failures.failed(error, { jobs: rows.length, path });
      this.failedJobs += rows.length;
      return 0;
    }
    this.failures.succeeded({ failedJobs: this.failedJobs });
    this.failedJobs = 0;
    metrics?.relayEnqueued.inc({ path }, rows.length);
    // The map goes after the entries, so a field always names an entry that exists (pruneSharedEntries relies on it).
    // A job the sweep finds without it is noted only; if the map never makes it, the sweep's
    // second look hands the job over in an entry of its own: delivered twice, completed once.
    if (sharedBy.length > 0) {
      await this.withinTimeout(this.deps.connection.hset(sharedEntriesKey(this.options.prefix), ...sharedBy), 'shared entry map').catch((error: unknown) => {
        log.warn({ err: error, jobs: sharedBy.length / 2 }, 'could not note which entries carry these jobs; the relay sweep will hand them over again');
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
      await Promise.all(rows.filter((row) => isFinished(states.get(row.id))).map((row) => this.deps.queue.remove(row.id)));
    } catch (error) {
      this.deps.log.warn({ err: error, jobs: rows.length }, 'could not clear finished BullMQ jobs before re-enqueue; the sweep will retry');
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
    await this.withinTimeout(this.deps.connection.hdel(sharedEntriesKey(this.options.prefix), ...jobIds), 'shared entry map');
  }

  /** Moves a delayed entry to the queue now. False when it is no longer delayed (its time came, or it was taken) or Redis did not answer. */
  async promote(entryId: string): Promise<boolean> {
    try {
      const entry = await this.withinTimeout(this.deps.queue.getJob(entryId), 'getJob');
      if (!entry || !(await this.withinTimeout(entry.isDelayed(), 'state'))) return false;
      await this.withinTimeout(entry.promote(), 'promote');
      return true;
    } catch (error) {
      this.deps.log.debug({ err: error, entryId }, 'could not promote a delayed entry; it comes back when its delay ends');
      return false;
    }
  }

  /** Removes a waiting or delayed job from BullMQ (one it does not hold counts as removed). False when a worker holds it, or Redis did not answer. */
  async remove(jobId: string): Promise<boolean> {
    try {
      return (await this.withinTimeout(this.deps.queue.remove(jobId), 'remove')) === 1;
    } catch (error) {
      this.deps.log.warn({ err: error, jobId }, 'could not remove job from BullMQ');
      return false;
    }
  }

  /**
   * Of own entries BullMQ gave up on, by job id: the runs that ended with their worker (see
   * runsOfGivenUpEntry) and when the entry was added (whose lock lapses count, see
   * lapsesOfEntry). An entry gone is left out.
   */
  async givenUpRuns(jobIds: readonly string[]): Promise<Map<string, { runs: number; entryAddedAt: number }>> {
    const entries = await this.withinTimeout(Promise.all(jobIds.map((id) => this.deps.queue.getJob(id))), 'getJob');
    const given = new Map<string, { runs: number; entryAddedAt: number }>();
    for (const entry of entries) if (entry?.id !== undefined) given.set(entry.id, { runs: runsOfGivenUpEntry(entry, STALL_SETTINGS.maxStalledCount), entryAddedAt: entry.timestamp });
    return given;
  }

  /** Where each job stands in Redis, bounded by the enqueue timeout. */
  redisStates(jobIds: string[]): Promise<Map<string, RedisJobState>> {
    return this.withinTimeout(readJobStates(this.deps.connection, this.options.prefix, jobIds), 'job state lookup');
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
      const states = await Promise.all(held.map((id) => this.withinTimeout(this.deps.queue.getJobState(id), 'job state')));
      held = held.filter((_id, index) => states[index] === 'active');
      if (held.length === 0 || Date.now() >= deadline) return waited;
      waited = true;
      await new Promise((resolve) => setTimeout(resolve, HELD_ENTRY_POLL_MS));
    }
  }

  private withinTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
    return withinEnqueueTimeout(this.options, promise, what);
  }
}

function isFinished(state: RedisJobState | undefined): boolean {
  return state === 'finished' || state === 'crash-looped';
}
