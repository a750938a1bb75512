import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import { isTerminal, type JobEvent, type JobView, type ListJobsQuery } from '../../contract';
import { listJobEvents } from '../db/job-events';
import { cancelJob, findJob, listJobs, requeueJob, toJobView, type JobRow } from '../db/jobs';
import { ConflictError, NotFoundError } from '../errors';
import type { FileService } from '../files/types';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { cancelChannel } from '../queue/keys';
import type { Relay } from '../queue/relay';
import { decodeCursor, encodeCursor } from './cursor';
import { Submitter, type SubmitBatchOptions } from './submit';
import type { JobPage, JobService, SubmitRequest, SubmitResult } from './types';

/** Submits of job types that clients may not submit (email.send); never wired to HTTP. */
export interface InternalJobSubmitter {
  submitInternal(request: SubmitRequest): Promise<SubmitResult>;
}

export interface JobServiceDeps {
  pool: Pool;
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
  const submitter = new Submitter({ pool: deps.batchPool, files: deps.files, relay: deps.relay, log: deps.log, metrics: deps.metrics }, deps.submit);

  async function ownedJob(ownerId: string, jobId: string): Promise<JobRow> {
    const row = await findJob(deps.pool, jobId, ownerId);
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
      const rows = await listJobs(deps.pool, ownerId, {
        status: query.status,
        type: query.type,
        limit: query.limit + 1,
        after: decodeCursor(query.cursor),
      });
      const page = rows.slice(0, query.limit);
      const last = page[page.length - 1];
      return {
        items: page.map(toJobView),
        nextCursor: rows.length > query.limit && last ? encodeCursor({ at: last.created_us, id: last.id }) : null,
      };
    },

    async cancel(ownerId, jobId): Promise<JobView> {
      const cancelled = await cancelJob(deps.pool, jobId, ownerId);
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
      const requeued = await requeueJob(deps.pool, jobId, ownerId, 'retried by request');
      if (!requeued) {
        const row = await ownedJob(ownerId, jobId);
        throw new ConflictError(
          isTerminal(row.status) ? `Only failed or cancelled jobs can be retried; this one ${row.status}.` : `The job is ${row.status}.`,
        );
      }
      await deps.relay.requeue([requeued.row]);
      return toJobView(requeued.row);
    },

    async events(ownerId, jobId, afterEventId): Promise<(JobEvent & { eventId: number })[]> {
      await ownedJob(ownerId, jobId);
      return listJobEvents(deps.pool, jobId, afterEventId);
    },

    close: () => submitter.close(),
  };
}
