import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import { v7 as timeOrderedUuid } from 'uuid';
import { fileReferences, findJobType, splitIntoTasks, toleratedFailures, type FanOut, type JobTypeDefinition } from '../../contract';
import { MicroBatcher } from '../batcher';
import { DatabaseDeadlineError, isolateRowFaults, isStatementTimeout } from '../db/errors';
import { insertFanOut } from '../db/fanouts';
import { findByIdempotencyKeys, findJob, insertJobs, toJobView, type JobRow, type NewJob } from '../db/jobs';
import { answerWithin, commitWithin } from '../db/transaction';
import { ConflictError, ValidationError } from '../errors';
import type { FileService } from '../files/types';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { Relay } from '../queue/relay';
import type { InternalSubmitRequest, SubmitRequest, SubmitResult } from './types';

export interface SubmitBatchOptions {
  /** How long the first submit of a batch waits for others. Default 1 ms. */
  windowMs?: number;
  /** Rows per INSERT at most. Default 500. */
  maxBatch?: number;
  /** INSERTs running at once at most. Default 2. */
  maxInFlight?: number;
  /**
   * How long a submit may wait, from when it joins a batch, for its row to commit; past it
   * the caller gets a 503 and nothing of the submit is written later. Default 5,000 ms, as
   * long as the pool waits for a connection.
   */
  commitWithinMs?: number;
}

/**
 * A batch's INSERT must start on the server this long before its earliest submit stops
 * waiting, or it writes nothing (require_started_before): a statement that starts in time
 * has this long to commit and answer. It also covers the difference between the API's clock
 * and the database's, which NTP keeps to milliseconds.
 */
export const SUBMIT_START_MARGIN_MS = 1_000;

/**
 * A submit this large or larger (its JSON body) is written by statements of its own, one at
 * a time: PostgreSQL spends up to a few tenths of a second of CPU storing a MiB of JSON
 * (bench/FINDINGS.md), and a small submit that shared such a statement, or waited for a
 * slot behind two of them, would wait as long. One user sending large bodies then makes
 * only large submits wait.
 */
export const LARGE_SUBMIT_BYTES = 64 * 1_024;
/** Large submits per statement: with the JSON body limit of 1 MiB, a few MiB at most. */
const LARGE_SUBMITS_PER_STATEMENT = 4;

/** A fan-out job inserts up to 10,001 rows in one transaction: it gets as long as any batch statement (the batch pool's query timeout). */
const FAN_OUT_COMMIT_WITHIN_MS = 15_000;

/** A submit waiting for its batch, and when it stops waiting. */
interface PendingJob {
  job: NewJob;
  /** Epoch ms. */
  deadline: number;
}

export interface SubmitDeps {
  /** Runs the batch INSERTs and idempotency-key lookups (see createBatchPool). */
  batchPool: Pool;
  files: Pick<FileService, 'assertOwned'>;
  relay: Pick<Relay, 'enqueue' | 'handOff'>;
  log: Logger;
  metrics?: Metrics;
}

/**
 * Submit: check the type and the input against the type's schema, then insert through a
 * batcher that gathers concurrent submits into one multi-row INSERT (one commit for many
 * jobs); large submits have a batcher of their own (LARGE_SUBMIT_BYTES). Each caller is answered only after the commit that holds its row, or refused (503)
 * when it does not commit in time, in which case it is never written; the relay hands
 * the rows to BullMQ after it, gathered with other batches' (Relay.handOff). The envelope
 * (maxAttempts, priority, the idempotency key's form) is the caller's to validate: the
 * HTTP route does it with the contract's schemas, internal callers are typed, and the
 * table's constraints stand behind both.
 */
export class Submitter {
  private readonly batcher: MicroBatcher<PendingJob, JobRow | null>;
  private readonly largeBatcher: MicroBatcher<PendingJob, JobRow | null>;
  private readonly commitWithinMs: number;
  private clockWarnedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly deps: SubmitDeps,
    options: SubmitBatchOptions = {},
  ) {
    this.commitWithinMs = options.commitWithinMs ?? 5_000;
    this.batcher = new MicroBatcher({
      name: 'submit batcher',
      windowMs: options.windowMs ?? 1,
      maxBatch: options.maxBatch ?? 500,
      maxInFlight: options.maxInFlight ?? 2,
      run: (jobs) => this.insertBatch(jobs),
    });
    this.largeBatcher = new MicroBatcher({
      name: 'large submit batcher',
      windowMs: 0,
      maxBatch: LARGE_SUBMITS_PER_STATEMENT,
      maxInFlight: 1,
      run: (jobs) => this.insertBatch(jobs),
    });
  }

  /** A client submit: its body was parsed by the contract's SubmitJobBody, which admits public types only. */
  submit(request: SubmitRequest): Promise<SubmitResult> {
    const { body } = request;
    return this.accept(
      { ownerId: request.ownerId, type: body.type, input: body.input, maxAttempts: body.maxAttempts, priority: body.priority, idempotencyKey: request.idempotencyKey, requestId: request.requestId },
      { allowInternal: false, validateInput: false, large: (request.sizeBytes ?? 0) >= LARGE_SUBMIT_BYTES },
    );
  }

  /** A platform-internal submit (e.g. email.send from password reset): internal types allowed, input validated here. */
  submitInternal(request: InternalSubmitRequest): Promise<SubmitResult> {
    return this.accept(request, { allowInternal: true, validateInput: true, large: false });
  }

  async close(): Promise<void> {
    await Promise.all([this.batcher.close(), this.largeBatcher.close()]);
  }

  private async accept(request: InternalSubmitRequest, how: { allowInternal: boolean; validateInput: boolean; large: boolean }): Promise<SubmitResult> {
    const definition = findJobType(request.type);
    if (!definition || (definition.internal && !how.allowInternal)) {
      throw new ValidationError('Unknown job type.', [{ field: 'type', message: `unknown job type "${request.type}"` }]);
    }
    const job = this.newJob(definition, request, how.validateInput ? parseInput(definition, request.input) : request.input);
    const fileRefs = fileReferences(definition.input, job.input);
    if (fileRefs.length > 0) await this.deps.files.assertOwned(request.ownerId, fileRefs);
    if (definition.fanOut) return this.acceptFanOut(definition, definition.fanOut, job);

    const batcher = how.large ? this.largeBatcher : this.batcher;
    const row = await batcher.add({ job, deadline: Date.now() + this.commitWithinMs });
    if (row) {
      this.deps.metrics?.jobsSubmitted.inc({ type: row.type });
      return { job: toJobView(row), created: true };
    }
    return this.existing(job);
  }

  /**
   * A fan-out job and its tasks are inserted by one statement of their own (one commit
   * for up to 10,000 rows), not through the batcher, and the tasks are handed to BullMQ
   * after the commit like any submitted job.
   */
  private async acceptFanOut(definition: JobTypeDefinition, fanOut: FanOut, job: NewJob): Promise<SubmitResult> {
    const child = findJobType(fanOut.childType);
    if (!child) throw new Error(`job type ${definition.type} fans out into the undeclared type ${fanOut.childType}`);
    const tasks = splitIntoTasks(definition.type, fanOut, job.input).map((input) => ({
      id: timeOrderedUuid(),
      input: parseInput(child, input),
      max_attempts: child.retry.attempts,
    }));
    const row = await commitWithin(this.deps.batchPool, FAN_OUT_COMMIT_WITHIN_MS, (client) =>
      insertFanOut(client, job, { childType: child.type, maxFailed: toleratedFailures(fanOut.failurePolicy(job.input)) }, tasks),
    );
    if (!row) return this.existing(job);
    this.deps.metrics?.jobsSubmitted.inc({ type: row.type });
    this.deps.metrics?.jobsSubmitted.inc({ type: child.type }, tasks.length);
    for (let start = 0; start < tasks.length; start += ENQUEUE_CHUNK) {
      void this.deps.relay.enqueue(tasks.slice(start, start + ENQUEUE_CHUNK).map((task) => ({ id: task.id, type: child.type, priority: row.priority })), 'submit');
    }
    return { job: toJobView(row), created: true };
  }

  private newJob(definition: JobTypeDefinition, request: InternalSubmitRequest, input: unknown): NewJob {
    const maxAttempts = request.maxAttempts ?? definition.retry.attempts;
    const priority = request.priority ?? 0;
    const key = request.idempotencyKey;
    return {
      // Time-ordered (UUIDv7): new rows land at the right edge of the primary key and of
      // job_events' (job_id, id) index instead of on random pages.
      id: timeOrderedUuid(),
      owner_id: request.ownerId,
      type: definition.type,
      input,
      max_attempts: maxAttempts,
      priority,
      idempotency_key: key ?? null,
      request_hash: key === undefined ? null : requestHash({ type: definition.type, input, maxAttempts, priority }),
      request_id: request.requestId ?? null,
    };
  }

  /** The earlier job an idempotency key names, when the body matches; 409 otherwise. */
  private async existing(job: NewJob): Promise<SubmitResult> {
    const key = job.idempotency_key;
    if (key === null) throw new Error(`job ${job.id} was not inserted and has no idempotency key`);
    const [row] = await findByIdempotencyKeys(this.deps.batchPool, [{ ownerId: job.owner_id, key }]);
    if (!row) throw new Error(`idempotency key conflict but no job holds key ${key}`);
    if (row.request_hash !== job.request_hash) {
      throw new ConflictError('This Idempotency-Key was already used with a different request.');
    }
    // The key's lookup reads the job alone; a fan-out job is read again with its task counts,
    // so a repeat answers with the job the first submit did (and GET /v1/jobs/{id} does).
    const whole = findJobType(row.type)?.fanOut ? await findJob(this.deps.batchPool, row.id) : row;
    return { job: toJobView(whole ?? row), created: false };
  }

  /**
   * One statement for the batch, which the server runs only if it starts it a margin before
   * the earliest deadline in the batch, so a statement that sat in a hung server's socket
   * writes nothing when the server resumes. Submits too close to their deadline to make it
   * (PostgreSQL not answering the batches ahead of them) are refused without being sent.
   */
  private async insertBatch(pending: PendingJob[]): Promise<PromiseSettledResult<JobRow | null>[]> {
    const now = Date.now();
    const due = pending.filter((entry) => entry.deadline - SUBMIT_START_MARGIN_MS > now);
    const deadline = Math.min(...due.map((entry) => entry.deadline));
    const written = due.length === 0 ? new Map<NewJob, PromiseSettledResult<JobRow | null>>() : await this.writeBatch(due.map((entry) => entry.job), deadline);
    return pending.map(({ job }) => written.get(job) ?? { status: 'rejected', reason: new DatabaseDeadlineError() });
  }

  private async writeBatch(jobs: NewJob[], deadline: number): Promise<Map<NewJob, PromiseSettledResult<JobRow | null>>> {
    const startBefore = deadline - SUBMIT_START_MARGIN_MS;
    const results = await isolateRowFaults<NewJob, PromiseSettledResult<JobRow | null>>(
      jobs,
      async (batch) => {
        // The halves a faulty row is isolated in share the batch's deadline.
        const inserted = await answerWithin(this.deps.batchPool, deadline - Date.now(), (client) => insertJobs(client, batch, startBefore));
        // Committed: hand the batch to BullMQ without making the callers wait for Redis.
        this.deps.relay.handOff(inserted);
        const byId = new Map(inserted.map((row) => [row.id, row]));
        return batch.map((job) => ({ status: 'fulfilled', value: byId.get(job.id) ?? null }));
      },
      async (job, error) => ({ status: 'rejected', reason: rowFaultError(job, error) }),
    ).catch((error: unknown) => {
      this.noticeClockAhead(error, startBefore);
      return jobs.map((): PromiseSettledResult<JobRow | null> => ({ status: 'rejected', reason: error }));
    });
    return new Map(jobs.map((job, index) => [job, results[index] as PromiseSettledResult<JobRow | null>]));
  }

  /**
   * A batch refused as started late while this host's clock says its start deadline is still
   * ahead: PostgreSQL's clock is ahead of ours, and every submit will be refused until the
   * clocks agree. Said at most once a minute, naming the check that measures it.
   */
  private noticeClockAhead(error: unknown, startBefore: number): void {
    const now = Date.now();
    if (!isStatementTimeout(error) || now >= startBefore || now - this.clockWarnedAt < 60_000) return;
    this.clockWarnedAt = now;
    this.deps.log.error(
      { err: error, marginMs: startBefore - now },
      "PostgreSQL refused a submit batch as started late though this host's clock says it was in time: its clock runs ahead of this host's; see platform doctor's clock check",
    );
  }
}

/** Tasks handed to BullMQ per addBulk: a 10,000-task job is ten round trips, none of them huge. */
const ENQUEUE_CHUNK = 1_000;

function parseInput(definition: JobTypeDefinition, input: unknown): unknown {
  const parsed = definition.input.safeParse(input ?? {});
  if (parsed.success) return parsed.data;
  throw new ValidationError(
    'The job is invalid.',
    parsed.error.issues.map((issue) => ({ field: ['input', ...issue.path.map(String)].join('.'), message: issue.message })),
  );
}

/**
 * What the submitter of a row PostgreSQL refused is told: its values (a data exception,
 * class 22, or a CHECK, 23514) are invalid; anything else of class 23 (a missing owner, a
 * duplicate) conflicts with what is stored.
 */
function rowFaultError(job: NewJob, error: unknown): Error {
  const detail = error instanceof Error ? error.message : String(error);
  const code = String((error as { code?: unknown }).code ?? '');
  return code.startsWith('22') || code === '23514'
    ? new ValidationError(`The job cannot be stored: ${detail}.`, [{ field: 'body', message: detail }])
    : new ConflictError(`The job ${job.id} conflicts with the stored data: ${detail}.`);
}

/** A digest of what a submit asked for, independent of key order, to tell a replay from a different request. */
export function requestHash(body: { type: string; input: unknown; maxAttempts: number; priority: number }): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
