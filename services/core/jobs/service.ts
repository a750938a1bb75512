import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import { MAX_LIST_RESPONSE_BYTES, type JobListItem, type JobStatus, type JobView, type ListJobsQuery, type ListTasksQuery } from '../../contract';
import { listTasks } from '../db/fanouts';
import { listJobEvents, listOwnerEvents, type StoredJobEvent } from '../db/job-events';
import {
  cancelJob,
  findJob,
  listJobs,
  readPayloads,
  toJobSummary,
  toJobView,
  toTaskCounts,
  type JobRow,
  type ListColumns,
  type ListedJobRow,
  type TaskCountColumns,
} from '../db/jobs';
import { ConflictError, NotFoundError } from '../errors';
import type { FileService } from '../files/types';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { cancelChannel } from '../queue/keys';
import type { Relay } from '../queue/relay';
import { withTimeout } from '../timeout';
import { decodeCursor, pageOf, type Page } from './cursor';
import { cancelFanOut, followParentMoves, requeueAndHandOver, retryFanOutAndHandOver } from './fanout';
import { deliveryHolder, isTerminalStatus, MOVES } from './lifecycle';
import { Submitter, type SubmitBatchOptions } from './submit';
import type { InternalSubmitRequest, JobPage, JobService, SubmitResult, TaskPage } from './types';

/** Submits of job types that clients may not submit (email.send); never wired to HTTP. */
export interface InternalJobSubmitter {
  submitInternal(request: InternalSubmitRequest): Promise<SubmitResult>;
}

export interface JobServiceDeps {
  /** Reads, lists, cancels and requeues: statements whose best plan depends on their values (see createGeneralPool). */
  generalPool: Pool;
  /** Runs the submit batches' INSERTs and idempotency-key lookups (see createBatchPool). */
  batchPool: Pool;
  files: Pick<FileService, 'assertOwned'>;
  relay: Relay;
  /** Publishes cancel requests to workers. */
  publisher: Redis;
  prefix: string;
  log: Logger;
  metrics?: Metrics;
  submit?: SubmitBatchOptions;
  /**
   * How long a cancel's answer waits for Redis to stop the job's delivery, the rest going on
   * after it (API_CANCEL_DELIVERY_WAIT_MS); unset, until Redis answered or its calls timed
   * out, so the answer comes after their warnings (the CLI's, which an operator reads).
   */
  cancelDeliveryWaitMs?: number;
}

export type EngineJobService = JobService & InternalJobSubmitter & { close(): Promise<void> };

const notFound = () => new NotFoundError('Job not found.');

/**
 * What the API's cancel waits at most for Redis to stop the job's delivery before it answers
 * (JobServiceDeps.cancelDeliveryWaitMs). The cancel is whole once its row commits: a worker
 * runs nothing of an entry whose job is cancelled, and asks PostgreSQL for cancels while its
 * subscription hears nothing, so what Redis does here only saves work. With Redis hung each
 * of those calls would hold the answer for its command timeout (5 s for taking the entry
 * out, 1 s for the announcement); past this wait they go on after the answer.
 */
export const API_CANCEL_DELIVERY_WAIT_MS = 250;

/** Why a job in `status` cannot be retried: only the states requeue moves from can. */
function notRetryable(status: JobStatus): ConflictError {
  return new ConflictError(
    isTerminalStatus(status) ? `Only ${MOVES.requeue.from.join(' or ')} jobs can be retried; this one ${status}.` : `The job is ${status}.`,
  );
}

export function createJobService(deps: JobServiceDeps): EngineJobService {
  const submitter = new Submitter({ batchPool: deps.batchPool, files: deps.files, relay: deps.relay, log: deps.log, metrics: deps.metrics }, deps.submit);

  async function ownedJob(ownerId: string, jobId: string): Promise<JobRow & TaskCountColumns> {
    const row = await findJob(deps.generalPool, jobId, ownerId);
    if (!row) throw notFound();
    return row;
  }

  /** Tells the worker running the job (if any) to abort it. Best effort: the row is already cancelled. */
  async function signalCancel(jobId: string, log: Logger): Promise<void> {
    try {
      await deps.publisher.publish(cancelChannel(deps.prefix), jobId);
    } catch (error) {
      log.warn({ err: error, jobId }, 'could not publish cancel; the worker will find the job cancelled when it reports');
    }
  }

  /**
   * Stops what still delivers a job just cancelled from `previous`: a queue entry is taken
   * out of Redis; if a worker took it meanwhile (remove fails on a locked job), or a worker
   * was running the job, that worker is told to abort.
   */
  async function stopDelivery(jobId: string, previous: JobStatus, log: Logger): Promise<void> {
    const holder = deliveryHolder(previous);
    if (holder === undefined) return;
    const removed = holder === 'queue' && (await deps.relay.remove(jobId));
    if (!removed) await signalCancel(jobId, log);
  }

  /** Waits for `stopping` (a cancel's calls to Redis), at most cancelDeliveryWaitMs when set; it goes on after that. */
  async function briefly(stopping: Promise<unknown>, jobId: string, log: Logger): Promise<void> {
    const waitMs = deps.cancelDeliveryWaitMs;
    if (waitMs === undefined) {
      await stopping;
      return;
    }
    await withTimeout(stopping, waitMs, 'Redis is slow').catch(() => {
      log.debug({ jobId }, 'cancel answered before Redis stopped its delivery; that goes on meanwhile');
    });
  }

  /** Cancels a fan-out job and its unfinished tasks; the workers running tasks are told to stop. */
  async function cancelWithTasks(ownerId: string, current: JobRow, log: Logger): Promise<JobView> {
    const cancelled = await cancelFanOut(deps.generalPool, current.id, ownerId);
    if (!cancelled) throw new ConflictError(`The job is already ${(await ownedJob(ownerId, current.id)).status}.`);
    await briefly(
      Promise.all([
        ...cancelled.runningTasks.map((taskId) => signalCancel(taskId, log)),
        // Its reduce step may be queued or running; a job waiting for its tasks has no delivery.
        stopDelivery(current.id, cancelled.move.previous, log),
      ]),
      current.id,
      log,
    );
    deps.metrics?.jobsCancelled.inc({ type: current.type });
    return toJobView(await ownedJob(ownerId, current.id));
  }

  /** Retries a fan-out job: its failed and cancelled tasks run again (or its reduce step, when they all succeeded). */
  async function retryWithTasks(ownerId: string, current: JobRow): Promise<JobView> {
    const retried = await retryFanOutAndHandOver(deps.generalPool, deps.relay, current.id, ownerId, 'owner');
    // Read again: `current` may be stale, e.g. the job another retry just moved.
    if (!retried) throw notRetryable((await ownedJob(ownerId, current.id)).status);
    return toJobView(await ownedJob(ownerId, current.id));
  }

  return {
    submit: (request) => submitter.submit(request),
    submitInternal: (request) => submitter.submitInternal(request),

    async get(ownerId, jobId): Promise<JobView> {
      return toJobView(await ownedJob(ownerId, jobId));
    },

    async list(ownerId, query: ListJobsQuery, maxBytes?: number): Promise<JobPage> {
      return listPage(deps.generalPool, { ...query, ownerId }, maxBytes);
    },

    async cancel(ownerId, jobId, log = deps.log): Promise<JobView> {
      const current = await ownedJob(ownerId, jobId);
      if (current.tasks_total !== null && current.tasks_total !== undefined) return cancelWithTasks(ownerId, current, log);
      const cancelled = await cancelJob(deps.generalPool, jobId, ownerId);
      if (!cancelled) {
        const row = await ownedJob(ownerId, jobId);
        throw new ConflictError(`The job is already ${row.status}.`);
      }
      // A task's cancel may finish its fan-out job.
      await followParentMoves(cancelled.parentMoves, { generalPool: deps.generalPool, relay: deps.relay, log });
      await briefly(stopDelivery(jobId, cancelled.previous, log), jobId, log);
      deps.metrics?.jobsCancelled.inc({ type: cancelled.row.type });
      return toJobView(cancelled.row);
    },

    async retry(ownerId, jobId): Promise<JobView> {
      const current = await ownedJob(ownerId, jobId);
      if (current.tasks_total !== null && current.tasks_total !== undefined) return retryWithTasks(ownerId, current);
      const requeued = await requeueAndHandOver({ generalPool: deps.generalPool, relay: deps.relay, log: deps.log }, current, ownerId, 'owner');
      if (!requeued) throw notRetryable((await ownedJob(ownerId, jobId)).status);
      return toJobView(requeued.row);
    },

    async tasks(ownerId, jobId, query: ListTasksQuery): Promise<TaskPage> {
      const parent = await ownedJob(ownerId, jobId);
      const counts = toTaskCounts(parent);
      if (!counts) throw new NotFoundError('The job has no tasks: it does not fan out.');
      const rows = await listTasks(deps.generalPool, { parentId: jobId, status: query.status, limit: query.limit + 1, after: decodeCursor(query.cursor) });
      return { ...pageOf(rows, query.limit, (row) => row.created_us, (row) => toJobSummary(row)), counts };
    },

    async events(ownerId, jobId, afterEventId): Promise<StoredJobEvent[]> {
      await ownedJob(ownerId, jobId);
      return listJobEvents(deps.generalPool, jobId, afterEventId);
    },

    async ownerEvents(ownerId, afterEventId): Promise<StoredJobEvent[]> {
      return listOwnerEvents(deps.generalPool, ownerId, afterEventId);
    },

    close: () => submitter.close(),
  };
}

/** Which parts `include` asks for (`input`, `result`, or both, comma-separated). */
function listColumns(include: string | undefined): ListColumns {
  const parts = new Set((include ?? '').split(',').filter(Boolean));
  return { input: parts.has('input'), result: parts.has('result') };
}

/**
 * One page of one owner's jobs, newest first. Items are summaries unless `include` asks for
 * input or result; then the page also stops before the item that would take it past
 * `maxBytes` (never more than MAX_LIST_RESPONSE_BYTES), so no page is unbounded.
 */
function listPage(generalPool: Pool, query: ListJobsQuery & { ownerId: string }, maxBytes = MAX_LIST_RESPONSE_BYTES): Promise<JobPage> {
  return pageOfJobs(generalPool, query, toListItem, Math.min(maxBytes, MAX_LIST_RESPONSE_BYTES));
}

/** The same page for operators: every owner's jobs unless `ownerId` narrows it, each item naming its owner. */
export function listPageForOperators(generalPool: Pool, query: ListJobsQuery & { ownerId?: string }): Promise<Page<JobListItem & { ownerId: string }>> {
  return pageOfJobs(generalPool, query, (row, columns) => ({ ...toListItem(row, columns), ownerId: row.owner_id }), MAX_LIST_RESPONSE_BYTES);
}

async function pageOfJobs<Item>(
  generalPool: Pool,
  query: ListJobsQuery & { ownerId?: string },
  toItem: (row: ListedJobRow, columns: ListColumns) => Item,
  maxBytes: number,
): Promise<Page<Item>> {
  const columns = listColumns(query.include);
  const rows = await listJobs(generalPool, {
    ownerId: query.ownerId,
    status: query.status,
    type: query.type,
    limit: query.limit + 1,
    after: decodeCursor(query.cursor),
  });
  if (!columns.input && !columns.result) return pageOf(rows, query.limit, (row) => row.created_us, (row) => toItem(row, columns));
  const { examined, sizes } = await readPayloadsWhileRoom(generalPool, rows.slice(0, query.limit), (row) => toItem(row, columns), { columns, maxBytes });
  let bytes = 0;
  // The rows not examined did not fit; one of them is left in, unread, to say that more follow.
  return pageOf(
    examined === Math.min(rows.length, query.limit) ? rows : rows.slice(0, examined + 1),
    query.limit,
    (row) => row.created_us,
    (row) => toItem(row, columns),
    (_item, itemsSoFar) => {
      bytes += sizes[itemsSoFar] ?? 0;
      return bytes <= maxBytes;
    },
  );
}

/**
 * Jobs whose payloads a page reads at a time. A job's input and result may be a MiB or more
 * each, and nothing cheap tells their size before they are read (PostgreSQL stores them
 * compressed; turning them into text to measure them costs as much as reading them), so a
 * page reads a few jobs, measures them and stops once the page is full: it reads at most
 * this many jobs past the page's byte cap. Reading all 101 rows a page looks at could
 * mean 200 MiB (jobs of 1 MiB in and out) read and parsed to send 4 MiB.
 */
const PAYLOAD_ROWS_PER_READ = 4;

/**
 * Reads the payloads of `rows` (in place), in order, PAYLOAD_ROWS_PER_READ at a time, until
 * their items, as JSON, pass `maxBytes`. Answers how many rows were read and each one's size
 * in bytes.
 */
async function readPayloadsWhileRoom(
  generalPool: Pool,
  rows: ListedJobRow[],
  toItem: (row: ListedJobRow) => unknown,
  { columns, maxBytes }: { columns: ListColumns; maxBytes: number },
): Promise<{ examined: number; sizes: number[] }> {
  const sizes: number[] = [];
  let bytes = 0;
  while (sizes.length < rows.length && bytes <= maxBytes) {
    const batch = rows.slice(sizes.length, sizes.length + PAYLOAD_ROWS_PER_READ);
    const payloads = await readPayloads(generalPool, batch.map((row) => row.id), columns);
    for (const row of batch) {
      Object.assign(row, payloads.get(row.id));
      const size = Buffer.byteLength(JSON.stringify(toItem(row)));
      sizes.push(size);
      bytes += size;
      if (bytes > maxBytes) break;
    }
  }
  return { examined: sizes.length, sizes };
}

function toListItem(row: ListedJobRow, columns: ListColumns): JobListItem {
  const item: JobListItem = toJobSummary(row);
  if (columns.input) item.input = row.input;
  if (columns.result) item.result = row.result ?? null;
  return item;
}
