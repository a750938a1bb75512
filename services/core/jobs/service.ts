import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import { MAX_LIST_RESPONSE_BYTES, type JobEvent, type JobListItem, type JobView, type ListJobsQuery } from '../../contract';
import { listJobEvents } from '../db/job-events';
import { cancelJob, findJob, listJobs, requeueJob, toJobSummary, toJobView, type JobRow, type ListColumns, type ListedJobRow } from '../db/jobs';
import { ConflictError, NotFoundError } from '../errors';
import type { FileService } from '../files/types';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { cancelChannel } from '../queue/keys';
import type { Relay } from '../queue/relay';
import { decodeCursor, pageOf } from './cursor';
import { isTerminalStatus } from './lifecycle';
import { Submitter, type SubmitBatchOptions } from './submit';
import type { InternalSubmitRequest, JobPage, JobService, SubmitResult } from './types';

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
}

export type EngineJobService = JobService & InternalJobSubmitter & { close(): Promise<void> };

const notFound = () => new NotFoundError('Job not found.');

export function createJobService(deps: JobServiceDeps): EngineJobService {
  const submitter = new Submitter({ batchPool: deps.batchPool, files: deps.files, relay: deps.relay, log: deps.log, metrics: deps.metrics }, deps.submit);

  async function ownedJob(ownerId: string, jobId: string): Promise<JobRow> {
    const row = await findJob(deps.generalPool, jobId, ownerId);
    if (!row) throw notFound();
    return row;
  }

  /** Tells the worker running the job (if any) to abort it. Best effort: the row is already cancelled. */
  async function signalCancel(jobId: string): Promise<void> {
    try {
      await deps.publisher.publish(cancelChannel(deps.prefix), jobId);
    } catch (error) {
      deps.log.warn({ err: error, jobId }, 'could not publish cancel; the worker will find the job cancelled when it reports');
    }
  }

  return {
    submit: (request) => submitter.submit(request),
    submitInternal: (request) => submitter.submitInternal(request),

    async get(ownerId, jobId): Promise<JobView> {
      return toJobView(await ownedJob(ownerId, jobId));
    },

    async list(ownerId, query: ListJobsQuery): Promise<JobPage> {
      return listPage(deps.generalPool, { ...query, ownerId });
    },

    async cancel(ownerId, jobId): Promise<JobView> {
      const cancelled = await cancelJob(deps.generalPool, jobId, ownerId);
      if (!cancelled) {
        const row = await ownedJob(ownerId, jobId);
        throw new ConflictError(`The job is already ${row.status}.`);
      }
      // A queued job is taken out of Redis; if a worker picked it up meanwhile (remove
      // fails on a locked job) or it was running, the worker is told to abort.
      const removed = cancelled.previous === 'queued' && (await deps.relay.remove(jobId));
      if (!removed) await signalCancel(jobId);
      deps.metrics?.jobsCancelled.inc({ type: cancelled.row.type });
      return toJobView(cancelled.row);
    },

    async retry(ownerId, jobId): Promise<JobView> {
      const requeued = await requeueJob(deps.generalPool, jobId, ownerId, 'owner');
      if (!requeued) {
        const row = await ownedJob(ownerId, jobId);
        throw new ConflictError(
          isTerminalStatus(row.status) ? `Only failed or cancelled jobs can be retried; this one ${row.status}.` : `The job is ${row.status}.`,
        );
      }
      await deps.relay.requeue([requeued.row]);
      return toJobView(requeued.row);
    },

    async events(ownerId, jobId, afterEventId): Promise<(JobEvent & { eventId: number })[]> {
      await ownedJob(ownerId, jobId);
      return listJobEvents(deps.generalPool, jobId, afterEventId);
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
 * One page of jobs, newest first: one owner's, or every owner's for operators. Items are
 * summaries unless `include` asks for input or result; then the page also stops before
 * the item that would take it past MAX_LIST_RESPONSE_BYTES, so no page is unbounded.
 */
export async function listPage(generalPool: Pool, query: ListJobsQuery & { ownerId?: string }): Promise<JobPage> {
  const columns = listColumns(query.include);
  const rows = await listJobs(generalPool, {
    ownerId: query.ownerId,
    status: query.status,
    type: query.type,
    limit: query.limit + 1,
    after: decodeCursor(query.cursor),
    columns,
  });
  let bytes = 0;
  const sized = columns.input || columns.result;
  return pageOf(
    rows,
    query.limit,
    (row) => row.created_us,
    (row) => toListItem(row, columns),
    (item) => {
      if (!sized) return true;
      bytes += Buffer.byteLength(JSON.stringify(item));
      return bytes <= MAX_LIST_RESPONSE_BYTES;
    },
  );
}

function toListItem(row: ListedJobRow, columns: ListColumns): JobListItem {
  const item: JobListItem = toJobSummary(row);
  if (columns.input) item.input = row.input;
  if (columns.result) item.result = row.result ?? null;
  return item;
}
