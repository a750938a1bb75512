import type { Pool } from 'pg';
import type { JobStatus } from '../../contract';
import { MicroBatcher } from '../batcher';
import { applyTransitions, loadRunStates, type EventRow, type RunState, type TransitionRow } from '../db/jobs';
import type { Logger } from '../logger';

/** A state change a worker reports. `at` is when it happened (ms since the epoch). */
export type WorkerTransition =
  | { kind: 'start'; jobId: string; attempt: number; at: number; from: 'queued' | 'running' }
  | { kind: 'progress'; jobId: string; attempt: number; progress: number }
  | { kind: 'succeeded'; jobId: string; attempt: number; at: number; result: unknown; resultFileId?: string }
  | { kind: 'failed'; jobId: string; attempt: number; at: number; error: string }
  | { kind: 'retrying'; jobId: string; attempt: number; at: number; error: string; retryInMs: number }
  | { kind: 'released'; jobId: string; attempt: number; at: number };

export interface TransitionBatchOptions {
  /**
   * How long the first transition of a tick waits for others. Default 0: the rest of the
   * current event-loop turn; under load, transitions gather behind the write in flight anyway.
   */
  windowMs?: number;
  /** Transitions per statement at most. Default 2,000. */
  maxBatch?: number;
  /** How long a write keeps retrying through a database outage before giving up. Default 60 s. */
  retryForMs?: number;
}

/** Errors worth retrying: connection loss, server restart, serialization failure, deadlock, too many connections. */
function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return true;
  return /^(08|57P|53300|40001|40P01)/.test(code) || ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'].includes(code);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether a delivery of `attempt` may run against the row as it stands. */
export function isRunnable(state: RunState | undefined, attempt: number): boolean {
  return state !== undefined && (state.status === 'queued' || state.status === 'running') && state.attempts <= attempt;
}

/**
 * The worker side of the job repository. Workers report transitions here; each tick they
 * are written as one UPDATE … FROM (VALUES …) plus their audit rows, in one statement.
 *
 * - A job's transitions within one tick merge into one row write: a job that starts and
 *   finishes within a tick is written once.
 * - Ticks run one at a time, so a job's transitions apply in the order reported.
 * - Every write is conditional on the job's state and attempt (see applyTransitions), so a
 *   job delivered twice completes once: the second terminal write matches no row.
 * - The runnable check before a run is a batched read too (one SELECT per tick).
 */
export class TransitionWriter {
  private readonly writes: MicroBatcher<WorkerTransition, boolean>;
  private readonly reads: MicroBatcher<string, RunState | undefined>;
  private readonly retryForMs: number;
  private closing = false;

  constructor(
    private readonly deps: { pool: Pool; log: Logger },
    options: TransitionBatchOptions = {},
  ) {
    this.retryForMs = options.retryForMs ?? 60_000;
    this.writes = new MicroBatcher({
      name: 'transition writer',
      windowMs: options.windowMs ?? 0,
      maxBatch: options.maxBatch ?? 2_000,
      maxInFlight: 1,
      run: (transitions) => this.write(transitions),
    });
    this.reads = new MicroBatcher({
      name: 'run-state reader',
      windowMs: 0,
      maxBatch: options.maxBatch ?? 2_000,
      maxInFlight: 2,
      run: (jobIds) => this.read(jobIds),
    });
  }

  /** Resolves true when the transition applied, false when the job had moved on (cancelled, completed elsewhere, newer attempt). */
  record(transition: WorkerTransition): Promise<boolean> {
    return this.writes.add(transition);
  }

  /** The job's current status and attempts, read in a batch with other deliveries'. */
  runState(jobId: string): Promise<RunState | undefined> {
    return this.reads.add(jobId);
  }

  flush(): Promise<void> {
    return this.writes.flush();
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([this.writes.close(), this.reads.close()]);
  }

  private async read(jobIds: string[]): Promise<PromiseSettledResult<RunState | undefined>[]> {
    const states = new Map((await this.withRetry(() => loadRunStates(this.deps.pool, [...new Set(jobIds)]))).map((state) => [state.id, state]));
    return jobIds.map((id) => ({ status: 'fulfilled', value: states.get(id) }));
  }

  private async write(transitions: WorkerTransition[]): Promise<PromiseSettledResult<boolean>[]> {
    const rows = new Map<string, TransitionRow>();
    const events: EventRow[] = [];
    const accepted = transitions.map((transition) => {
      const row = rows.get(transition.jobId);
      if (!row) rows.set(transition.jobId, firstRow(transition));
      // A job already finished within this batch takes nothing more: a second delivery's
      // outcome in the same tick must not apply (nor leave an audit row) either.
      else if (TERMINAL.has(row.status)) return false;
      else mergeInto(row, transition);
      const event = auditEvent(transition);
      if (event) events.push(event);
      return true;
    });
    const applied = await this.withRetry(() => applyTransitions(this.deps.pool, [...rows.values()], events));
    return transitions.map((transition, index) => ({ status: 'fulfilled', value: accepted[index] === true && applied.has(transition.jobId) }));
  }

  private async withRetry<T>(operation: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.retryForMs;
    for (let delay = 100; ; delay = Math.min(delay * 2, 2_000)) {
      try {
        return await operation();
      } catch (error) {
        if (!isTransient(error) || Date.now() + delay > deadline || this.closing) throw error;
        this.deps.log.warn({ err: error, retryInMs: delay }, 'job state write failed; retrying');
        await sleep(delay);
      }
    }
  }
}

const TERMINAL: ReadonlySet<JobStatus> = new Set(['succeeded', 'failed', 'cancelled']);

/**
 * Rows and events are built as literals of one fixed shape: on Node 20 an object spread
 * followed by more properties (`{ ...base, status }`) falls off V8's fast path, about 2 µs
 * each against 40 ns for a literal, several times per job here.
 */
function firstRow(transition: WorkerTransition): TransitionRow {
  const row: TransitionRow = {
    id: transition.jobId,
    expected: transition.kind === 'start' ? ['queued', 'running'] : ['running'],
    status: 'running',
    attempt: transition.attempt,
    attempts: transition.attempt,
    progress: undefined,
    result: undefined,
    result_file_id: undefined,
    error: undefined,
    started_ms: transition.kind === 'start' ? transition.at : undefined,
    finished_ms: undefined,
  };
  if (transition.kind !== 'start') mergeInto(row, transition);
  return row;
}

/** Folds a later transition of the same job into its pending row; the precondition stays the first one's. */
function mergeInto(row: TransitionRow, transition: WorkerTransition): void {
  row.attempt = Math.max(row.attempt, transition.attempt);
  switch (transition.kind) {
    case 'start':
      row.status = 'running';
      row.attempts = transition.attempt;
      row.started_ms ??= transition.at;
      row.finished_ms = null;
      return;
    case 'progress':
      if (TERMINAL.has(row.status)) return;
      row.progress = transition.progress;
      return;
    case 'succeeded':
      row.status = 'succeeded';
      row.attempts = transition.attempt;
      row.progress = 100;
      row.result = transition.result;
      row.result_file_id = transition.resultFileId ?? null;
      row.error = null;
      row.finished_ms = transition.at;
      return;
    case 'failed':
      row.status = 'failed';
      row.attempts = transition.attempt;
      row.error = transition.error;
      row.finished_ms = transition.at;
      return;
    case 'retrying':
      row.status = 'queued';
      row.attempts = transition.attempt;
      row.error = transition.error;
      row.finished_ms = null;
      return;
    case 'released':
      // Interrupted by shutdown, not by a failure: the attempt is not spent.
      row.status = 'queued';
      row.attempts = transition.attempt - 1;
      row.finished_ms = null;
      return;
  }
}

function event(transition: WorkerTransition & { at: number }, from: JobStatus, to: JobStatus, detail: string | null): EventRow {
  return { job_id: transition.jobId, from_status: from, to_status: to, attempt: transition.attempt, detail, at_ms: transition.at };
}

function auditEvent(transition: WorkerTransition): EventRow | undefined {
  switch (transition.kind) {
    case 'start':
      return event(transition, transition.from, 'running', transition.from === 'running' ? 'redelivered after an interrupted run' : null);
    case 'progress':
      return undefined;
    case 'succeeded':
      return event(transition, 'running', 'succeeded', null);
    case 'failed':
      return event(transition, 'running', 'failed', transition.error);
    case 'retrying':
      return event(
        transition,
        'running',
        'queued',
        `attempt ${transition.attempt} failed: ${transition.error}; retrying in ${transition.retryInMs} ms`,
      );
    case 'released':
      return event(transition, 'running', 'queued', 'released at worker shutdown');
  }
}
