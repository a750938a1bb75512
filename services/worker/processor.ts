import type { Readable } from 'node:stream';
import type { FileView, JobInput, JobOutput, JobStatus, JobTypeDefinition } from '../contract';
import type { Logger } from '../core/logger';

/** What a processor may touch: its input, the owner's files, its own outputs, progress and an abort signal. */
export interface ProcessorContext<T extends JobTypeDefinition> {
  jobId: string;
  ownerId: string;
  /** 1 for the first run, incremented on each retry. */
  attempt: number;
  input: JobInput<T>;
  files: {
    /** Streams a file the job's owner owns; NotFoundError otherwise. */
    open(fileId: string): Promise<{ file: FileView; body: Readable }>;
    /** Stores this job's output; idempotent, so a re-run after a crash does not duplicate it. */
    saveOutput(name: string, contentType: string, body: Readable): Promise<FileView>;
  };
  /** Where email.send drops the messages it composes; see MailDrop. */
  mailDrop: MailDrop;
  /**
   * A fan-out job's tasks with their outcomes, in creation order, read from PostgreSQL a
   * page at a time: what a reduce step folds. Empty for a job that does not fan out.
   */
  tasks(): AsyncIterable<TaskOutcome>;
  /** Aborted on cancellation and when shutdown's grace period runs out. Long work must honour it. */
  signal: AbortSignal;
  /** Reports progress (0-100); the executor throttles the writes (throttleProgress) and the transition writer batches them. */
  progress(percent: number): void;
  log: Logger;
}

/** One task of a fan-out job as its reduce step sees it. */
export interface TaskOutcome {
  id: string;
  input: unknown;
  status: JobStatus;
  result: unknown;
  resultFileId: string | null;
  error: string | null;
}

/**
 * Where composed e-mail goes: objects under `mail/` in the object store, one per name, so
 * a re-run overwrites instead of sending twice; or an SMTP relay (SMTP_URL), which delivers.
 */
export interface MailDrop {
  /** The From of the messages it carries. */
  readonly from: string;
  write(name: string, message: Buffer, options?: { signal?: AbortSignal; to?: string }): Promise<void>;
}

export interface ProcessorOutcome<T extends JobTypeDefinition> {
  result: JobOutput<T>;
  resultFileId?: string;
}

export interface Processor<T extends JobTypeDefinition = JobTypeDefinition> {
  definition: T;
  run(context: ProcessorContext<T>): Promise<ProcessorOutcome<T>>;
}

/**
 * Thrown by a processor for input that can never succeed (a file that is not CSV, …):
 * the job fails at once instead of burning its retries.
 */
export class PermanentJobError extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}

/**
 * A processor's outcome carries its output file's id exactly when its type declares
 * producesFile: GET /v1/job-types tells clients which types give a file, and a processor that
 * disagreed would break that promise for every one of its jobs without failing any.
 */
export type OutputFileOf<T extends JobTypeDefinition> = boolean extends T['producesFile']
  ? { resultFileId?: string }
  : T['producesFile'] extends true
    ? { resultFileId: string }
    : { resultFileId?: never };

export function defineProcessor<T extends JobTypeDefinition>(
  definition: T,
  run: (context: ProcessorContext<T>) => Promise<ProcessorOutcome<T> & OutputFileOf<T>>,
): Processor<T> {
  return { definition, run };
}
