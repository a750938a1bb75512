import { type z } from 'zod';
import { fileFields } from './file-inputs';
import { MAX_TASKS, type FailurePolicy } from './job-model';

/**
 * A fan-out type's split: the tasks one submission becomes (each an ordinary job of
 * `childType`, with that type's retries and timeout) and the failure policy that decides
 * the parent when some of them fail. The type's own processor is the reduce step: it runs
 * once, when the tasks are done, over their results.
 */
export interface FanOut<In = unknown> {
  childType: string;
  /** The tasks' inputs, in order; each must satisfy `childType`'s input schema. Pure: no I/O. */
  tasks(input: In): unknown[];
  failurePolicy(input: In): FailurePolicy;
}

/** One linear bound on the memory a run holds: `bytes`, plus `perFileByte` for each byte of its file. */
export interface MemoryBound {
  bytes: number;
  perFileByte: number;
}

/**
 * Memory a run holds that grows with the file it reads (text.stats' table of distinct
 * words, the records csv.summary has parsed ahead, brotli's window), beyond the chunks every
 * streaming run holds: bounds fitted over the peaks measured by bench/file-job-memory.ts, for
 * the file its type's one FileId field names. The worker reserves the least of the bounds
 * for the file's size from its file memory budget (WORKER_FILE_MEMORY_BUDGET_BYTES) before
 * the run starts, so a worker never runs more of such work at once than its memory holds.
 */
export type FileMemoryBounds = readonly [MemoryBound, ...MemoryBound[]];

/** Bytes a run may hold for a file of `fileBytes`: the least of its bounds, in whole bytes. */
export function fileMemoryBytes(bounds: FileMemoryBounds, fileBytes: number): number {
  return Math.ceil(Math.min(...bounds.map(({ bytes, perFileByte }) => bytes + perFileByte * fileBytes)));
}

/** Retry policy of a job type: attempts in all (first run included) and the base of the exponential backoff. */
export interface RetryPolicy {
  attempts: number;
  backoffMs: number;
}

export interface JobTypeDefinition<Name extends string = string, In extends z.ZodType = z.ZodType, Out extends z.ZodType = z.ZodType, ProducesFile extends boolean = boolean> {
  type: Name;
  description: string;
  input: In;
  output: Out;
  retry: RetryPolicy;
  /**
   * How long one attempt may run. Past it the worker fires the attempt's abort signal,
   * frees its slot and fails the attempt with a timeout error (retried like any failure
   * while attempts remain). A worker's shutdown drain is sized from the longest of these,
   * so a rollout lets every running attempt end on its own.
   */
  timeoutMs: number;
  /** Internal types (e.g. email.send) are run by workers but not submittable over HTTP. */
  internal: boolean;
  /**
   * Whether the processor writes an output file (its id lands in the job's resultFileId).
   * Kept as a literal type, so the processor's outcome must carry resultFileId exactly when
   * its type says so (defineProcessor): GET /v1/job-types cannot promise a file that never comes.
   */
  producesFile: ProducesFile;
  /** Set for a fan-out type: how a submission splits into tasks. */
  fanOut?: FanOut<z.output<In>>;
  /**
   * Input keys that carry a secret (email.send's text holds a password-reset token):
   * removed from the stored input once the job succeeds, so the secret lives in the
   * database only until the work it was for is done.
   */
  secretInputKeys?: readonly string[];
  /**
   * How many jobs of this type one queue entry may carry. BullMQ spends a fixed amount of
   * Redis and worker CPU per entry (about 130-200 µs here, bench/FINDINGS.md): for a type
   * whose run takes well under a millisecond that is most of what a job costs, and jobs
   * submitted together sharing an entry divide it. A type whose jobs run for long keeps 1:
   * each job is then its own unit of BullMQ's concurrency, so workers share the load job by
   * job. A worker runs up to WORKER_CONCURRENCY entries at once, so up to that many times
   * this of such jobs.
   */
  jobsPerQueueEntry: number;
  /**
   * For a type whose run holds memory that grows with the file it reads (the one its single
   * FileId field names): the bounds of that memory (see FileMemoryBounds); undefined for an
   * input whose run holds none worth counting. Pure: no I/O.
   */
  fileMemory?(input: z.output<In>): FileMemoryBounds | undefined;
}

/** Jobs one queue entry may carry at most (jobsPerQueueEntry). */
export const MAX_JOBS_PER_QUEUE_ENTRY = 50;

/** Ceiling of a type's timeout: a worker's shutdown waits this long at most, and Kubernetes waits for the worker. */
export const MAX_JOB_TIMEOUT_MS = 30 * 60_000;

export type JobInput<T extends JobTypeDefinition> = z.output<T['input']>;
export type JobOutput<T extends JobTypeDefinition> = z.output<T['output']>;

export function defineJobType<Name extends string, In extends z.ZodType, Out extends z.ZodType, ProducesFile extends boolean = false>(definition: {
  type: Name;
  description: string;
  input: In;
  output: Out;
  retry?: Partial<RetryPolicy>;
  /**
   * From 1 second to MAX_JOB_TIMEOUT_MS (30 minutes), and required: no default fits every
   * type (a file job stopped at a generic limit fails on large files only), and the longest
   * of them sizes every worker's shutdown drain.
   */
  timeoutMs: number;
  internal?: boolean;
  producesFile?: ProducesFile;
  fanOut?: FanOut<z.output<In>>;
  secretInputKeys?: readonly string[];
  /** Default 1; from 1 to MAX_JOBS_PER_QUEUE_ENTRY. */
  jobsPerQueueEntry?: number;
  fileMemory?: (input: z.output<In>) => FileMemoryBounds | undefined;
}): JobTypeDefinition<Name, In, Out, ProducesFile> {
  if (!/^[a-z][a-z0-9]*(\.[a-z][a-z0-9]*)*$/.test(definition.type)) {
    throw new Error(`job type "${definition.type}" must be lower-case dotted words`);
  }
  const retry = { attempts: 3, backoffMs: 1_000, ...definition.retry };
  if (!Number.isInteger(retry.attempts) || retry.attempts < 1 || retry.attempts > 25) {
    throw new RangeError(`job type ${definition.type}: retry.attempts must be an integer from 1 to 25`);
  }
  if (retry.backoffMs < 0) throw new RangeError(`job type ${definition.type}: retry.backoffMs must be >= 0`);
  const { timeoutMs } = definition;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1_000 || timeoutMs > MAX_JOB_TIMEOUT_MS) {
    throw new RangeError(`job type ${definition.type}: timeoutMs must be declared, an integer from 1000 to ${MAX_JOB_TIMEOUT_MS}`);
  }
  const jobsPerQueueEntry = definition.jobsPerQueueEntry ?? 1;
  if (!Number.isInteger(jobsPerQueueEntry) || jobsPerQueueEntry < 1 || jobsPerQueueEntry > MAX_JOBS_PER_QUEUE_ENTRY) {
    throw new RangeError(`job type ${definition.type}: jobsPerQueueEntry must be an integer from 1 to ${MAX_JOBS_PER_QUEUE_ENTRY}`);
  }
  const files = fileFields(definition.input);
  if (definition.fileMemory && (files.length !== 1 || files[0]?.multiple)) {
    throw new Error(`job type ${definition.type}: fileMemory needs exactly one FileId field holding one file, not ${files.map(({ name }) => name).join(', ') || 'none'}`);
  }
  return {
    type: definition.type,
    description: definition.description,
    input: definition.input,
    output: definition.output,
    retry,
    timeoutMs,
    internal: definition.internal ?? false,
    producesFile: definition.producesFile ?? (false as ProducesFile),
    jobsPerQueueEntry,
    ...(definition.fanOut ? { fanOut: definition.fanOut } : {}),
    ...(definition.secretInputKeys ? { secretInputKeys: definition.secretInputKeys } : {}),
    ...(definition.fileMemory ? { fileMemory: definition.fileMemory } : {}),
  };
}

/** The tasks of a fan-out submission, checked against the limits every fan-out shares. */
export function splitIntoTasks<In>(type: string, fanOut: FanOut<In>, input: In): unknown[] {
  const tasks = fanOut.tasks(input);
  if (tasks.length === 0 || tasks.length > MAX_TASKS) throw new RangeError(`job type ${type}: a fan-out has 1 to ${MAX_TASKS} tasks, not ${tasks.length}`);
  return tasks;
}
