import type { JobsOptions } from 'bullmq';
import { findJobType, RETENTION } from '../../../contract';
import type { QueueEntryRow } from '../../db/jobs';
import { SHARED_ENTRY_ID_PREFIX } from '../keys';

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

/** What a job's own queue entry says of its runs that ended with their worker (BullMQ's Job fits). */
export interface InterruptedRuns {
  /** BullMQ's count: the times this entry's lock lapsed while it ran. */
  stalledCounter: number;
  /** The entry's data; its `crashes` are runs before the entry existed (see OwnEntryData). */
  data: unknown;
}

/**
 * Runs of an own entry's job that ended with their worker: BullMQ's count for this entry,
 * plus those charged before the entry existed (`crashes`). Runs a live worker stopped for a
 * lapsed lock of this entry are among them; the lifecycle's crashesCharged takes those off.
 */
export function runsEndedWithWorker(entry: InterruptedRuns): number {
  const crashes = (entry.data as { crashes?: unknown } | null)?.crashes;
  return entry.stalledCounter + (typeof crashes === 'number' && Number.isInteger(crashes) && crashes > 0 ? crashes : 0);
}

/**
 * The runs of an entry BullMQ gave up on for its runs ending with their worker: what it
 * counts, and at least one more than the limit, since BullMQ gave up on it.
 */
export function runsOfGivenUpEntry(entry: InterruptedRuns, maxStalledCount: number): number {
  return Math.max(runsEndedWithWorker(entry), maxStalledCount + 1);
}

/** The lock lapses a job's row holds for this entry: none when they were counted for another (see recordLockLapses). */
export function lapsesOfEntry(row: { lock_lapses: number; lock_lapses_entry: number | null }, entryAddedAt: number): number {
  return row.lock_lapses_entry === entryAddedAt ? row.lock_lapses : 0;
}

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

/**
 * Every entry's BullMQ options. Retries are PostgreSQL's (attempts, max_attempts) and the
 * lifecycle's: BullMQ runs each entry once.
 */
export function entryOptions(): JobsOptions {
  return { attempts: 1, removeOnComplete: RETENTION.completed, removeOnFail: { ...RETENTION.failed } };
}

/**
 * The addBulk item of an entry carrying `jobs` (all of one type and priority). Its options
 * are built up field by field: this runs per entry on the submit path (bench/FINDINGS.md).
 */
export function entryItem(jobs: readonly EnqueueRow[], { delayMs, crashes }: RequeueOptions): { name: string; data: QueueJobData; opts: JobsOptions } {
  const first = jobs[0] as EnqueueRow;
  const opts = entryOptions();
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

/**
 * Rows in entries: jobs of one type and priority, in the order given, share an entry up to
 * their type's jobsPerQueueEntry; a type that is not declared (or declares 1) gets one per job.
 */
export function shareEntries(rows: readonly EnqueueRow[]): EnqueueRow[][] {
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

export function sharedEntryId(jobs: readonly EnqueueRow[]): string {
  return `${SHARED_ENTRY_ID_PREFIX}${(jobs[0] as EnqueueRow).id}`;
}
