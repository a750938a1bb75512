import type { JobListItem, JobStatus, JobSummary, JobView, ListJobsQuery, ListTasksQuery, QueueDepthState, SubmitJobBody, TaskCounts } from '../../contract';
import type { StoredJobEvent } from '../db/job-events';
import type { JobAsRead } from '../db/jobs';
import type { Logger } from '../logger';
import type { Page } from './cursor';

export interface SubmitRequest {
  ownerId: string;
  /** What to run: a body the contract's SubmitJobBody schema parsed (public types, input valid, defaults applied). */
  body: SubmitJobBody;
  idempotencyKey?: string;
  /** Correlation id of the submitting HTTP call; it travels with the job into worker logs. */
  requestId?: string;
  /** Bytes of the submit as it arrived (its JSON body): a large one is written apart from the others (see LARGE_SUBMIT_BYTES). */
  sizeBytes?: number;
}

/** A submission from inside the platform (e.g. email.send for a password reset): any type, validated by the use case. */
export interface InternalSubmitRequest {
  ownerId: string;
  type: string;
  input: unknown;
  maxAttempts?: number;
  priority?: number;
  idempotencyKey?: string;
  requestId?: string;
}

export interface SubmitResult {
  job: JobView;
  /** False when an earlier submit with the same idempotency key and body is returned. */
  created: boolean;
}

export type JobPage = Page<JobListItem>;

/** A page of a fan-out job's tasks, with the job's counts per task status. */
export type TaskPage = Page<JobSummary> & { counts: TaskCounts };

export interface QueueStats {
  queue: string;
  paused: boolean;
  counts: Record<QueueDepthState, number>;
  /** Jobs by status in PostgreSQL, the source of truth. */
  statuses: Record<JobStatus, number>;
  /** Age in seconds of the oldest queued job Redis does not hold yet (0 when none). */
  relayLagSeconds: number;
}

/**
 * The job use cases. Errors: ValidationError (unknown type, bad input, with field issues),
 * NotFoundError (missing or another owner's job, or a file the input names),
 * ConflictError (idempotency key reused with another body; cancel of a terminal job;
 * retry of a job that is not failed or cancelled). A method that logs takes the caller's
 * logger last (the API passes its request's, so the lines carry the request id).
 */
export interface JobService {
  submit(request: SubmitRequest): Promise<SubmitResult>;
  get(ownerId: string, jobId: string): Promise<JobView>;
  /**
   * One page of the owner's jobs. A page that includes inputs or results ends before the item
   * that would take it past `maxBytes` (MAX_LIST_RESPONSE_BYTES at most), and holds one item
   * at least, whatever its size.
   */
  list(ownerId: string, query: ListJobsQuery, maxBytes?: number): Promise<JobPage>;
  cancel(ownerId: string, jobId: string, log?: Logger): Promise<JobView>;
  retry(ownerId: string, jobId: string): Promise<JobView>;
  /** A fan-out job's tasks, in creation order; NotFoundError for a job that does not fan out. */
  tasks(ownerId: string, jobId: string, query: ListTasksQuery): Promise<TaskPage>;
  /** State transitions of the job (and of its tasks) after `afterEventId` (for SSE resumption), oldest first. */
  events(ownerId: string, jobId: string, afterEventId?: number): Promise<StoredJobEvent[]>;
  /** State transitions of all the owner's jobs after `afterEventId`, oldest first. */
  ownerEvents(ownerId: string, afterEventId: number): Promise<StoredJobEvent[]>;
}

/**
 * Operations for admins and the `platform` CLI; not scoped to an owner. What they log (an
 * operator's action) goes to the caller's logger when one is given.
 */
export interface JobAdmin {
  queueStats(): Promise<QueueStats>;
  pause(log?: Logger): Promise<void>;
  resume(log?: Logger): Promise<void>;
  /** Dead letters newest first, of one `type` and whose error holds `errorContains` when given. */
  deadLetters(options: { limit: number; cursor?: string; type?: string; errorContains?: string }): Promise<JobPage>;
  /**
   * Puts a dead-lettered job back in the queue with a fresh attempt budget. With `asRead`
   * (the job as the caller read it when it decided to replay it), only if the job is still
   * so, checked in the transaction that moves it: a ChangedSinceReadError, and nothing
   * moved, when it was replayed, ran or failed again since.
   */
  replay(jobId: string, log?: Logger, options?: { asRead?: JobAsRead }): Promise<ReplayedJob>;
  /**
   * Re-enqueues the queued jobs Redis lost, reclaims lost running attempts and dead-letters
   * crash loops; says how many jobs each of those happened to. Looks twice, a moment apart,
   * so a job still on its way to Redis is not mistaken for a lost one.
   */
  reconcile(): Promise<ReconcileReport>;
}

/** A replayed job, and whether Redis took it: if not, it is queued in PostgreSQL, and the relay's sweep hands it over once Redis answers. */
export interface ReplayedJob {
  job: JobView;
  handedOver: boolean;
}

/** What `platform reconcile` did, by kind: each job it changed is counted once, under what happened to it. */
export interface ReconcileReport {
  /** Queued jobs compared with Redis at the first look and at the second. */
  checked: { firstLook: number; secondLook: number };
  /** Queued jobs Redis did not hold at either look (it lost them): handed to Redis again. */
  reenqueued: number;
  /** Queued jobs lost like those that Redis did not take when handed over (full under noeviction, not answering): still missing. */
  refused: number;
  /** Running jobs whose worker and Redis entry were both gone: queued again, the lost attempt not charged (a deferral). */
  retried: number;
  /** Running jobs like those that had no deferral left (MAX_DEFERRALS): failed, in the dead-letter set. */
  failed: number;
  /** Jobs whose runs kept ending with their worker (a crash loop BullMQ gave up on): failed, in the dead-letter set. */
  abandoned: number;
  /** Queued jobs missing from Redis at the second look only: most are still on their way; the relay sweep hands over any that stay missing. */
  pending: number;
  /**
   * True when another process (an api or worker running the relay sweep) held the sweep lock
   * at one of the looks: this run stopped that look, and that process repairs what it finds,
   * which its log says, not this report.
   */
  sweptElsewhere: boolean;
}
