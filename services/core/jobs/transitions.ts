import type { Pool } from 'pg';
import { MicroBatcher } from '../batcher';
import { isolateRowFaults, isRetryable } from '../db/errors';
import { jobsWithEvents } from '../db/job-events';
import { applyTransitions, loadDeliveries, type DeliveryRow, type EventRow, type TransitionRow } from '../db/jobs';
import { toStorableText } from '../json';
import type { Logger } from '../logger';
import type { Relay } from '../queue/relay';
import type { ParentMove } from '../db/task-counts';
import { followParentMoves } from './fanout';
import { attemptsAfter, auditDetail, isTerminalStatus, MOVES, writePrecondition, type AuditContext } from './lifecycle';

/**
 * A state change a worker reports, named by its lifecycle event. `at` is when it happened (ms
 * since the epoch). `runStartedAt`: the `at` of the start of the run that reports it, which
 * must still be the job's latest start for it to apply (TransitionRow.latest_start_ms); a
 * start that redelivers a running job names the run it takes over instead
 * (`takesOverRunStartedAt`). A move no run reports (a crash loop's abandon) names none.
 */
export type WorkerTransition =
  | { event: 'start'; jobId: string; attempt: number; at: number; from: 'queued' | 'running'; takesOverRunStartedAt?: number }
  | { event: 'progress'; jobId: string; attempt: number; progress: number; runStartedAt?: number }
  | { event: 'succeed'; jobId: string; attempt: number; at: number; result: unknown; resultFileId?: string; runStartedAt?: number }
  | { event: 'fail'; jobId: string; attempt: number; at: number; error: string; runStartedAt?: number }
  | { event: 'retry'; jobId: string; attempt: number; at: number; error: string; retryInMs: number; runStartedAt?: number }
  | { event: 'release'; jobId: string; attempt: number; at: number; cause: 'shutdown' | 'overtaken cancel'; runStartedAt?: number }
  /** `deferrals`: the job's count with this deferral; `dependency` and `error`: what failed, for the audit row. */
  | { event: 'defer'; jobId: string; attempt: number; at: number; dependency: string; error: string; deferrals: number; retryInMs: number; runStartedAt?: number }
  | { event: 'abandon'; jobId: string; attempt: number; at: number; reason: string; from: 'queued' | 'running'; runStartedAt?: number };

/** The start a transition's write requires to be the job's latest (TransitionRow.latest_start_ms). */
function requiredLatestStart(transition: WorkerTransition): number | undefined {
  return transition.event === 'start' ? transition.takesOverRunStartedAt : transition.runStartedAt;
}

export interface TransitionBatchOptions {
  /**
   * How long the first transition of a batch waits for others while the worker has spare
   * slots (0: the rest of the current event-loop turn). Default 5 ms: BullMQ hands a worker
   * the jobs of a hand-off one fetch after another, so at a moderate rate a shorter wait
   * writes them a job or two per commit (bench/FINDINGS.md). While most slots are busy the
   * writer does not wait: transitions gather behind the write in flight anyway, and a wait
   * would only hold the slots longer.
   */
  windowMs?: number;
  /** The same for the delivery read before each run. Default 5 ms, for the same reason. */
  readWindowMs?: number;
  /** Transitions per statement at most. Default 2,000. */
  maxBatch?: number;
}

/** The rows and audit events one batch of transitions becomes, and which transitions were taken. */
export interface MergedTransitions {
  rows: TransitionRow[];
  events: EventRow[];
  /** Per transition, in order: false when its job had already finished earlier in the same batch. */
  accepted: boolean[];
}

/**
 * Folds a batch of transitions into one row write per job. A job's transitions apply in the
 * order reported; the row keeps its first transition's precondition (the states the job
 * may be in now) and ends in its last transition's state, so a job that starts and
 * finishes within a batch is written once. A job already finished within the batch takes
 * nothing more: a second delivery's outcome in the same tick neither applies nor leaves
 * an audit row.
 */
export function mergeTransitions(transitions: readonly WorkerTransition[]): MergedTransitions {
  const byJob = new Map<string, TransitionRow>();
  const events: EventRow[] = [];
  const accepted = transitions.map((transition) => {
    const row = byJob.get(transition.jobId);
    if (!row) byJob.set(transition.jobId, firstRow(transition));
    else if (isTerminalStatus(row.status)) return false;
    else mergeInto(row, transition);
    const event = auditEvent(transition);
    if (event) events.push(event);
    return true;
  });
  return { rows: [...byJob.values()], events, accepted };
}

/**
 * Rows are built as literals of one fixed shape and updated in place: they are made
 * several times per job on the hottest path the worker has (bench/FINDINGS.md).
 */
function firstRow(transition: WorkerTransition): TransitionRow {
  const row: TransitionRow = {
    id: transition.jobId,
    expected: writePrecondition(transition.event, transition.event === 'start' ? transition.from : undefined),
    status: MOVES[transition.event].to,
    attempt: transition.attempt,
    attempts: transition.attempt,
    deferrals: undefined,
    progress: undefined,
    result: undefined,
    result_file_id: undefined,
    error: undefined,
    started_ms: undefined,
    finished_ms: undefined,
    latest_start_ms: requiredLatestStart(transition),
  };
  mergeInto(row, transition);
  return row;
}

/** Folds a later transition of the same job into its pending row; the preconditions stay the first one's. */
function mergeInto(row: TransitionRow, transition: WorkerTransition): void {
  row.attempt = Math.max(row.attempt, transition.attempt);
  const move = MOVES[transition.event];
  switch (transition.event) {
    case 'progress':
      row.progress = transition.progress;
      return;
    case 'start':
      row.started_ms ??= transition.at;
      row.finished_ms = null;
      break;
    case 'succeed':
      row.progress = 100;
      row.result = transition.result;
      row.result_file_id = transition.resultFileId ?? null;
      row.error = null;
      row.finished_ms = transition.at;
      break;
    case 'fail':
      row.error = toStorableText(transition.error);
      row.finished_ms = transition.at;
      break;
    case 'abandon':
      row.error = toStorableText(transition.reason);
      row.finished_ms = transition.at;
      break;
    case 'retry':
      row.error = toStorableText(transition.error);
      row.finished_ms = null;
      break;
    case 'release':
      row.finished_ms = null;
      break;
    case 'defer':
      row.deferrals = transition.deferrals;
      // The contract's error says why the last attempt ended, a deferred one's as a retried one's.
      row.error = toStorableText(transition.error);
      row.finished_ms = null;
      break;
    default: {
      // A worker event added to the lifecycle without its columns here stops tsc, not a job at run time.
      const unmerged: never = transition;
      throw new Error(`no merge for the worker event of ${JSON.stringify(unmerged)}`);
    }
  }
  row.status = move.to;
  row.attempts = attemptsAfter(transition.event, transition.attempt);
}

function auditContext(transition: WorkerTransition): AuditContext {
  switch (transition.event) {
    case 'start':
      return { event: 'start', from: transition.from };
    case 'fail':
      return { event: 'fail', error: transition.error };
    case 'retry':
      return { event: 'retry', attempt: transition.attempt, error: transition.error, retryInMs: transition.retryInMs };
    case 'abandon':
      return { event: 'abandon', reason: transition.reason };
    case 'release':
      return { event: 'release', cause: transition.cause };
    case 'defer':
      return { event: 'defer', attempt: transition.attempt, dependency: transition.dependency, error: transition.error, deferral: transition.deferrals, retryInMs: transition.retryInMs };
    default:
      return { event: transition.event };
  }
}

function auditEvent(transition: WorkerTransition): EventRow | undefined {
  if (transition.event === 'progress' || !MOVES[transition.event].audited) return undefined;
  const detail = auditDetail(auditContext(transition));
  const from = transition.event === 'start' || transition.event === 'abandon' ? transition.from : (MOVES[transition.event].from[0] ?? 'running');
  return {
    job_id: transition.jobId,
    from_status: from,
    to_status: MOVES[transition.event].to,
    attempt: transition.attempt,
    detail: detail === null ? null : toStorableText(detail),
    at_ms: transition.at,
  };
}

/**
 * What one job's transitions of a batch (`transitions`, those the batch accepted) become
 * when PostgreSQL refused their write for the job's data: the job is dead-lettered with the
 * reason, instead of its neighbours in the batch. Its moves up to its last outcome stay (a
 * start did happen); that outcome, which carried the data (a result, an error text), gives
 * way to the lifecycle's fail move, or to an abandon with the reason when it was an abandon
 * (which may come from queued, where fail does not apply). Merged like any batch, the row
 * keeps the precondition of the job's first transition and the audit rows go on from the
 * state the job was in.
 */
export function unstorableOutcome(jobId: string, transitions: readonly WorkerTransition[], error: unknown, at: number): { row: TransitionRow; events: EventRow[] } {
  const reason = `the job's outcome could not be stored: ${error instanceof Error ? error.message : String(error)}`;
  const outcomeIndex = transitions.findLastIndex((transition) => transition.event !== 'start' && transition.event !== 'progress');
  const outcome = transitions[outcomeIndex];
  // Progress is not audited and a failed job's progress says nothing: none of it is kept.
  const before = (outcome ? transitions.slice(0, outcomeIndex) : transitions).filter((transition) => transition.event !== 'progress');
  const attempt = Math.max(0, ...transitions.map((transition) => transition.attempt));
  const failure: WorkerTransition = outcome?.event === 'abandon' ? { ...outcome, reason, at } : { event: 'fail', jobId, attempt, at, error: reason };
  const { rows, events } = mergeTransitions([...before, failure]);
  const row = rows[0] as TransitionRow;
  // The run the refused row was written for, named even when the replacement's first transition is another.
  row.latest_start_ms = transitions[0] && requiredLatestStart(transitions[0]);
  return { row, events };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `items` by the job each belongs to, in their order. */
function groupByJob<T>(items: readonly T[], jobIdOf: (item: T) => string): Map<string, T[]> {
  const byJob = new Map<string, T[]>();
  for (const item of items) {
    const group = byJob.get(jobIdOf(item));
    if (group) group.push(item);
    else byJob.set(jobIdOf(item), [item]);
  }
  return byJob;
}

/** Transitions per tick of the large-input lane (see TransitionWriter.record): a few MiB of results at most. */
const LARGE_INPUT_TRANSITIONS_PER_TICK = 8;

/**
 * The worker side of the job repository. Workers report transitions here; each tick they
 * are written as one UPDATE … FROM (VALUES …) plus their audit rows, in one statement.
 *
 * - Ticks run one at a time, so a job's transitions apply in the order reported. The jobs
 *   with large inputs (whose results are often as large) have ticks of their own, also one
 *   at a time, beside the others': storing a MiB of JSON takes PostgreSQL a few tenths of a
 *   second, which other jobs' transitions would otherwise wait out.
 * - Every write is conditional on the job's state and attempt, and a run's on its start
 *   being the job's latest (see applyTransitions), so a job delivered twice completes once,
 *   as the run that holds it ends it: the other run's writes match no row.
 * - A row whose data PostgreSQL refuses fails its own job only (isolateRowFaults).
 * - While PostgreSQL is away, writes and reads wait for it (capped backoff) for as long as
 *   the process lives: a finished job's result is kept and written when the server is back.
 *   A write tried again after an answer that never came first asks which of its jobs have
 *   their audit rows stored (jobsWithEvents): those moved already and are not written twice.
 * - The delivery read before a run is a batched read too (one SELECT per tick).
 */
export class TransitionWriter {
  private readonly writes: MicroBatcher<WorkerTransition, boolean>;
  private readonly largeInputWrites: MicroBatcher<WorkerTransition, boolean>;
  private readonly reads: MicroBatcher<string, DeliveryRow | undefined>;
  private closing = false;

  constructor(
    /** `relay` hands the reduce steps this writer's batches queue to BullMQ (without it, the relay's sweep does, later). */
    private readonly deps: {
      /** The delivery reads and state writes: primary-key statements (see createBatchPool). */
      batchPool: Pool;
      /** Cancels the tasks of fan-out jobs this writer's batches fail by their policy: a statement over a job's tasks, not by primary key. */
      generalPool: Pool;
      log: Logger;
      relay?: Pick<Relay, 'requeue'>;
      /** True while most of the worker's slots are busy: batches then form without waiting. */
      saturated?: () => boolean;
    },
    options: TransitionBatchOptions = {},
  ) {
    const whileSpare = (windowMs: number) => () => (deps.saturated?.() ? 0 : windowMs);
    this.writes = new MicroBatcher({
      name: 'transition writer',
      windowMs: whileSpare(options.windowMs ?? 5),
      maxBatch: options.maxBatch ?? 2_000,
      maxInFlight: 1,
      run: (transitions) => this.write(transitions),
    });
    this.largeInputWrites = new MicroBatcher({
      name: 'transition writer (large inputs)',
      windowMs: 0,
      maxBatch: LARGE_INPUT_TRANSITIONS_PER_TICK,
      maxInFlight: 1,
      run: (transitions) => this.write(transitions),
    });
    this.reads = new MicroBatcher({
      name: 'delivery reader',
      windowMs: whileSpare(options.readWindowMs ?? 5),
      maxBatch: options.maxBatch ?? 2_000,
      maxInFlight: 2,
      run: (jobIds) => this.read(jobIds),
    });
  }

  /**
   * Resolves true when the transition applied, false when the job had moved on (cancelled,
   * completed elsewhere, newer attempt, another run started). `job.largeInput`: the job's
   * input is too large to come with the delivery read (DeliveryRow.input_inline false); every
   * transition of such a job must say so, since its transitions keep their order only within
   * one lane.
   */
  record(transition: WorkerTransition, job: { largeInput?: boolean } = {}): Promise<boolean> {
    return (job.largeInput ? this.largeInputWrites : this.writes).add(transition);
  }

  /** The job as a delivery needs it (state, type, owner, input), read in a batch with other deliveries'. */
  delivery(jobId: string): Promise<DeliveryRow | undefined> {
    return this.reads.add(jobId);
  }

  async flush(): Promise<void> {
    await Promise.all([this.writes.flush(), this.largeInputWrites.flush()]);
  }

  /** Stops reading; pending writes still wait for PostgreSQL. Idempotent. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([this.writes.close(), this.largeInputWrites.close(), this.reads.close()]);
  }

  private async read(jobIds: string[]): Promise<PromiseSettledResult<DeliveryRow | undefined>[]> {
    const rows = await this.untilWritten('delivery read', () => loadDeliveries(this.deps.batchPool, [...new Set(jobIds)]), () => this.closing);
    const byId = new Map(rows.map((row) => [row.id, row]));
    return jobIds.map((id) => ({ status: 'fulfilled', value: byId.get(id) }));
  }

  /**
   * One tick: the transitions merged into a row per job, written in one statement; a row
   * PostgreSQL refuses for its data fails its own job (failUnstorable), not its neighbours.
   * Answers, per transition, whether it applied.
   */
  private async write(transitions: WorkerTransition[]): Promise<PromiseSettledResult<boolean>[]> {
    const { rows, events, accepted } = mergeTransitions(transitions);
    const eventsByJob = groupByJob(events, (event) => event.job_id);
    const acceptedByJob = groupByJob(
      transitions.filter((_transition, index) => accepted[index]),
      (transition) => transition.jobId,
    );
    const parentMoves: ParentMove[] = [];
    const outcomes = await isolateRowFaults(
      rows,
      (batch) => this.writeRows(batch, eventsByJob, parentMoves),
      (row, error) => this.failUnstorable(row, acceptedByJob.get(row.id) ?? [], error, parentMoves),
    );
    const applied = new Set(rows.filter((_row, index) => outcomes[index]).map((row) => row.id));
    if (parentMoves.length > 0) {
      followParentMoves(parentMoves, { generalPool: this.deps.generalPool, relay: this.deps.relay, log: this.deps.log }).catch((error: unknown) =>
        this.deps.log.warn({ err: error }, 'could not act on fan-out jobs a write moved on; the relay sweep will'),
      );
    }
    return transitions.map((transition, index) => ({ status: 'fulfilled', value: accepted[index] === true && applied.has(transition.jobId) }));
  }

  /**
   * Writes `batch` with its audit rows until PostgreSQL answers; answers per row whether it
   * applied. After a try whose answer did not come, PostgreSQL may have committed it all the
   * same (before the next try, or while that try waited for the row locks the first still
   * held): the next try first asks which rows have their first audit row stored, and counts
   * those as applied instead of writing them twice.
   */
  private async writeRows(batch: TransitionRow[], eventsByJob: ReadonlyMap<string, EventRow[]>, parentMoves: ParentMove[]): Promise<boolean[]> {
    const storedEarlier = (rows: TransitionRow[]) => jobsWithEvents(this.deps.batchPool, rows.flatMap((row) => eventsByJob.get(row.id)?.slice(0, 1) ?? []));
    let unanswered = false;
    return this.untilWritten('job state write', async () => {
      const retried = unanswered;
      const committed = retried ? await storedEarlier(batch) : new Set<string>();
      const pending = batch.filter((row) => !committed.has(row.id));
      unanswered = true;
      const written =
        pending.length === 0
          ? { applied: new Set<string>(), parentMoves: [] }
          : await applyTransitions(
              this.deps.batchPool,
              pending,
              pending.flatMap((row) => eventsByJob.get(row.id) ?? []),
            );
      const refused = pending.filter((row) => !written.applied.has(row.id));
      if (retried && refused.length > 0) for (const id of await storedEarlier(refused)) committed.add(id);
      unanswered = false;
      parentMoves.push(...written.parentMoves);
      return batch.map((row) => committed.has(row.id) || written.applied.has(row.id));
    });
  }

  /**
   * PostgreSQL refused `row` for its data: its job is dead-lettered with the reason instead
   * (unstorableOutcome). Answers false: whatever was written, it is not what the
   * transitions reported.
   */
  private async failUnstorable(row: TransitionRow, accepted: readonly WorkerTransition[], error: unknown, parentMoves: ParentMove[]): Promise<boolean> {
    this.deps.log.error({ err: error, jobId: row.id }, 'a job state write was refused for its data; failing that job alone');
    const replacement = unstorableOutcome(row.id, accepted, error, Date.now());
    const written = await this.untilWritten('job state write', () => applyTransitions(this.deps.batchPool, [replacement.row], replacement.events));
    parentMoves.push(...written.parentMoves);
    return false;
  }

  /** Runs `operation` until it succeeds, waiting out a database outage; other errors are thrown at once. */
  private async untilWritten<T>(what: string, operation: () => Promise<T>, giveUp: () => boolean = () => false): Promise<T> {
    for (let delay = 100, attempt = 1; ; delay = Math.min(delay * 2, 2_000), attempt += 1) {
      try {
        return await operation();
      } catch (error) {
        if (!isRetryable(error) || giveUp()) throw error;
        // One line per outage and then one every ten tries, not one per try.
        if (attempt === 1 || attempt % 10 === 0) this.deps.log.warn({ err: error, attempt, retryInMs: delay }, `${what} failed; retrying until PostgreSQL answers`);
        await sleep(delay);
      }
    }
  }
}
