import type { Pool } from 'pg';
import { fileMemoryBytes, fileReferences, type JobTypeDefinition, type MemoryBudgetName } from '../contract';
import { loadInput, removeSecretInput, type DeliveryRow } from '../core/db/jobs';
import { NotFoundError, QuotaExceededError } from '../core/errors';
import type { FileService } from '../core/files/types';
import { deferralsAfter, deferralsExhaustedReason, eventAfterFailedAttempt, eventAfterInfrastructureFailure, planDelivery } from '../core/jobs/lifecycle';
import type { TransitionWriter, WorkerTransition } from '../core/jobs/transitions';
import type { Logger } from '../core/logger';
import type { Metrics } from '../core/metrics';
import { retryDelayMs } from './backoff';
import type { FairShare, HeldShare } from './fair-share';
import { JobAbortedError, untilAborted, type AbortKind } from './job-abort';
import { infrastructureFailure, MISSING_PROCESSOR, type Dependency } from './infrastructure-failure';
import { jobLogger } from './job-log';
import type { MemoryBudget } from '../core/memory-budget';
import { PermanentJobError, type MailDrop, type Processor, type ProcessorContext } from './processor';
import { throttleProgress } from './progress-throttle';
import { storableResult } from './storable-result';
import { readTaskOutcomes } from './task-outcomes';

export interface JobExecutorOptions {
  /** Reads each job's delivery row and records the lifecycle events of its runs, batched with other deliveries'. */
  transitions: Pick<TransitionWriter, 'delivery' | 'record'>;
  /** Where a large input is read and a succeeded job's secret input removed (primary-key statements). */
  batchPool: Pool;
  /** Room for large inputs (those the delivery read leaves out): a job with one waits for it before its input is read. */
  inputBudget: MemoryBudget;
  /** Room for what file jobs hold that grows with their file (a type's fileMemory): such a job waits for it before it starts. */
  fileMemoryBudget: MemoryBudget;
  /** Where a reduce step reads its tasks, by parent id (see createGeneralPool). */
  generalPool: Pool;
  /** The owner's files a processor opens, and where it saves its output. */
  files: FileService;
  /** Where email.send delivers. */
  mailDrop: MailDrop;
  /** The processor for a job type; undefined defers the job (a worker of an older release than the API's). */
  processors: (type: string) => Processor | undefined;
  log: Logger;
  metrics?: Metrics;
  /** Progress of one job is written at most this often, in milliseconds. */
  progressIntervalMs: number;
  /** Shares of the slots per user, for the deliveries that run in entries of their own (see FairShare). */
  fairShare?: Pick<FairShare, 'take'>;
}

/**
 * How one delivery of a job ended, for the queue entry that carried it: nothing more to do;
 * queue the job again (a retry or a deferral after its backoff, or a release at shutdown);
 * dead-lettered; or stopped because the entry is no longer this worker's (`lost`: its lock
 * lapsed, and BullMQ's stalled check delivers the entry again, as after a crash).
 */
export type Settlement = { kind: 'done' } | { kind: 'again'; row: DeliveryRow; delayMs: number } | { kind: 'dead'; message: string } | { kind: 'lost' };

/** How a run's start write went: applied, refused by its precondition (the job had moved), or failed with an error. */
type StartOutcome = 'applied' | 'refused' | 'failed';

/**
 * One run of a job here: the attempt it is, and when it started, the `at` of its start's
 * audit row, which its writes name (WorkerTransition.runStartedAt) so they are refused once
 * another run of the job has started; whether it took over a run of the same attempt (a
 * redelivery), and how its start write went.
 */
interface JobRun {
  attempt: number;
  startedAt: number;
  from: 'queued' | 'running';
  started: Promise<StartOutcome>;
}

const DONE: Settlement = { kind: 'done' };
const LOST: Settlement = { kind: 'lost' };

const MAX_ERROR_LENGTH = 2_000;

/** How often an outcome refused only as a concurrent write moved the job's row is written again (see recordOutcome); each needs another such write. */
const OUTCOME_REWRITES = 3;

/**
 * Base of the backoff of a job whose type this worker has no processor for; its release may
 * not know the type's own. Doubled per deferral up to MAX_BACKOFF_MS, the MAX_DEFERRALS
 * deferrals span one to two hours (jitter): a rollout's skew, many times over.
 */
const MISSING_PROCESSOR_BACKOFF_MS = 5_000;

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.length > MAX_ERROR_LENGTH ? `${message.slice(0, MAX_ERROR_LENGTH)}…` : message;
}

function isPermanent(error: unknown): boolean {
  return error instanceof PermanentJobError || (error as Error | undefined)?.name === 'PermanentJobError';
}

/**
 * Runs jobs by id, whatever delivered them. For each, it reads the job from PostgreSQL
 * (state, type, owner, input: nothing from the queue is trusted), asks the lifecycle whether
 * and as which attempt it may run, runs its processor with an abort signal, the type's
 * timeout and throttled progress, and reports each event to the transition writer. The
 * lifecycle decides what a failed attempt means (retry or dead-letter; deferred, the attempt
 * not charged, when it failed on the platform's infrastructure); the answer is a Settlement,
 * which whoever delivered the job turns into a move of its queue entry.
 */
export class JobExecutor {
  /** Abort controllers of the deliveries running here, by job id (one job may be delivered twice at once). */
  private readonly active = new Map<string, Set<AbortController>>();
  /** Set by a shutdown's abortAll: see there. */
  private shuttingDown = false;

  constructor(private readonly options: JobExecutorOptions) {}

  /** Deliveries running now. */
  get inFlight(): number {
    let count = 0;
    for (const controllers of this.active.values()) count += controllers.size;
    return count;
  }

  /** The jobs with a delivery running now. */
  runningJobIds(): string[] {
    return [...this.active.keys()];
  }

  /** Aborts every running delivery of the job; what its run becomes follows from `kind`. */
  abort(jobId: string, kind: AbortKind): void {
    for (const controller of this.active.get(jobId) ?? []) {
      if (controller.signal.aborted) continue;
      this.options.log.info({ jobId, reason: kind }, 'aborting job');
      controller.abort(new JobAbortedError(kind));
    }
  }

  /**
   * Aborts every delivery running now. After a shutdown's, deliveries that begin later are
   * stopped before they start too: BullMQ may still hand over an entry fetched as it closes,
   * among them the very jobs just released, and nothing would abort their runs.
   */
  abortAll(kind: AbortKind): void {
    if (kind === 'shutdown') this.shuttingDown = true;
    for (const jobId of this.active.keys()) this.abort(jobId, kind);
  }

  /**
   * Runs one delivery of the job; rejects only when its state could not be read or written.
   * `ownEntry`: the job came in an entry of its own, which holds a slot for as long as it
   * runs, so it runs only on a share of its user's (fairShare); without one it goes 'again'
   * after the wait the share names, unless a share of its user frees first and calls it back.
   */
  async execute(jobId: string, delivery: { ownEntry: boolean } = { ownEntry: false }): Promise<Settlement> {
    const controller = new AbortController();
    if (this.shuttingDown) controller.abort(new JobAbortedError('shutdown'));
    // Registered before the delivery read so a cancel arriving meanwhile is not missed.
    const controllers = this.active.get(jobId) ?? new Set<AbortController>();
    controllers.add(controller);
    this.active.set(jobId, controllers);
    try {
      const row = await this.options.transitions.delivery(jobId);
      const plan = row && planDelivery(row);
      if (!row || !plan) {
        this.options.log.info({ jobId, status: row?.status, attempts: row?.attempts }, 'delivery skipped: the job is no longer runnable');
        return DONE;
      }
      const { fairShare } = this.options;
      let share: HeldShare | undefined;
      if (delivery.ownEntry && fairShare) {
        const taken = await fairShare.take(row.owner_id, row.id, row.type);
        if (!('share' in taken)) {
          this.options.log.debug({ jobId, ownerId: row.owner_id, waitMs: taken.waitMs }, 'delivery held: its user runs as many jobs as one user may');
          return { kind: 'again', row, delayMs: taken.waitMs };
        }
        share = taken.share;
      }
      try {
        return await this.runWithInput(row, plan, controller);
      } finally {
        // After the outcome is written: the job the freed share calls back reads this one as ended.
        share?.release();
      }
    } finally {
      controllers.delete(controller);
      if (controllers.size === 0) this.active.delete(jobId);
      this.options.metrics?.workerLastActivity.set(Date.now() / 1_000);
    }
  }

  private async runWithInput(row: DeliveryRow, plan: { attempt: number; from: 'queued' | 'running' }, controller: AbortController): Promise<Settlement> {
    const log = jobLogger(this.options.log, row);
    // A cancel that came during the delivery read, or a delivery begun during shutdown.
    if (controller.signal.aborted) return this.stoppedBeforeStart(row, plan, controller.signal.reason, log);
    if (row.input_inline) return this.runWithFileMemory(row, plan, controller, log);
    // Held until the job's outcome is written: its input and result are in memory until then.
    let release: () => void;
    try {
      release = await this.reserve(this.options.inputBudget, 'input', row.input_bytes, row, controller.signal, log);
    } catch (error) {
      return this.stoppedBeforeStart(row, plan, error, log);
    }
    try {
      const input = await loadInput(this.options.batchPool, row.id);
      if (input === undefined) return DONE;
      return await this.runWithFileMemory({ ...row, input }, plan, controller, log);
    } finally {
      release();
    }
  }

  /**
   * A job whose type holds memory that grows with its file starts only once the file memory
   * budget has room for what its file may need, and holds it until its outcome is written.
   * The wait comes before the run: its start is not recorded (a first delivery stays queued)
   * and its timeout has not begun, so waiting never fails it.
   */
  private async runWithFileMemory(row: DeliveryRow, plan: { attempt: number; from: 'queued' | 'running' }, controller: AbortController, log: Logger): Promise<Settlement> {
    const bytes = await this.fileMemoryOf(row);
    if (bytes === 0) return this.run(row, plan, controller, log);
    let release: () => void;
    try {
      release = await this.reserve(this.options.fileMemoryBudget, 'file', bytes, row, controller.signal, log);
    } catch (error) {
      return this.stoppedBeforeStart(row, plan, error, log);
    }
    try {
      return await this.run(row, plan, controller, log);
    } finally {
      release();
    }
  }

  /** What the job's file (its type's one FileId field) may make its run hold, by its type's fileMemory; 0 when its type declares none. */
  private async fileMemoryOf(row: DeliveryRow): Promise<number> {
    const definition = this.options.processors(row.type)?.definition;
    // The input was validated against the type's schema (defaults applied) when it was submitted.
    const bounds = definition?.fileMemory?.(row.input);
    const fileId = definition && fileReferences(definition.input, row.input)[0]?.fileId;
    if (!bounds || fileId === undefined) return 0;
    try {
      const file = await this.options.files.get(row.owner_id, fileId);
      return fileMemoryBytes(bounds, file.size);
    } catch (error) {
      // A file deleted since the job was submitted: the run fails for good as it opens it, holding nothing.
      if (error instanceof NotFoundError) return 0;
      throw error;
    }
  }

  /**
   * Takes `bytes` of a memory budget once it has room; a job that has to wait says so in the
   * log and the metrics. A cancel or shutdown meanwhile ends the wait (rejects with its reason).
   */
  private reserve(budget: MemoryBudget, name: MemoryBudgetName, bytes: number, row: DeliveryRow, signal: AbortSignal, log: Logger): Promise<() => void> {
    if (budget.wouldWait(bytes, row.owner_id)) {
      log.info({ budget: name, bytes, heldBytes: budget.held, budgetBytes: budget.capacityBytes, waiting: budget.waiting }, `job waits for room in the worker's ${name} memory budget`);
      this.options.metrics?.jobsMemoryWaits.inc({ type: row.type, budget: name });
    }
    return budget.acquire(bytes, row.owner_id, signal);
  }

  /**
   * The delivery was stopped before its run started (while it waited for memory, or as it
   * began during shutdown): nothing of a run is recorded or undone. At shutdown the job goes
   * back to the queue as it is; after a cancel it is handed on only if it was queued again
   * meanwhile (see handOn).
   */
  private async stoppedBeforeStart(row: DeliveryRow, plan: { attempt: number }, reason: unknown, log: Logger): Promise<Settlement> {
    const kind = reason instanceof JobAbortedError ? reason.kind : undefined;
    if (kind === 'shutdown') {
      log.info('job handed back to the queue at shutdown before it started');
      return { kind: 'again', row, delayMs: 0 };
    }
    if (kind === 'lock-lost') {
      log.info('job stopped before it started: this worker lost its queue entry, which is delivered again');
      return LOST;
    }
    if (kind === undefined) throw reason;
    log.info({ reason: kind }, 'job stopped before it started');
    return this.handOn(row, plan.attempt, log);
  }

  private async run(row: DeliveryRow, plan: { attempt: number; from: 'queued' | 'running' }, controller: AbortController, log: Logger): Promise<Settlement> {
    const { metrics } = this.options;
    const { attempt } = plan;
    const startedAt = Date.now();
    metrics?.jobsStarted.inc({ type: row.type });
    if (attempt === 1 && plan.from === 'queued') metrics?.jobTimeToStart.observe({ type: row.type }, (startedAt - row.created_ms) / 1_000);

    // Not awaited: it is written with the next tick (merged with the outcome when the job is
    // that quick). If it does not apply, the job was cancelled or finished elsewhere: stop.
    const takesOver = plan.from === 'running' ? (row.run_started_ms ?? undefined) : undefined;
    const started = this.record(row, { event: 'start', jobId: row.id, attempt, at: startedAt, from: plan.from, takesOverRunStartedAt: takesOver }).then(
      (applied): StartOutcome => {
        if (!applied) controller.abort(new JobAbortedError('not-runnable'));
        return applied ? 'applied' : 'refused';
      },
      (error: unknown): StartOutcome => {
        log.warn({ err: error }, 'could not record the job start');
        controller.abort(new JobAbortedError('not-runnable'));
        return 'failed';
      },
    );
    const run: JobRun = { attempt, startedAt, from: plan.from, started };

    const processor = this.options.processors(row.type);
    if (!processor) {
      // The API takes every type of its own release's contract; a worker of an older release
      // (a rollout under way) lacks the newest. Not the job's doing: deferred to a later
      // delivery, which a worker of the new release takes.
      const message = `no processor for job type "${row.type}" in this worker's release`;
      return this.defer(row, run, { error: new Error(message), message, dependency: MISSING_PROCESSOR }, MISSING_PROCESSOR_BACKOFF_MS, log);
    }
    const { definition } = processor;
    const timeout = setTimeout(() => controller.abort(new JobAbortedError('timeout')), definition.timeoutMs);
    const progress = throttleProgress((percent) => {
      this.record(row, { event: 'progress', jobId: row.id, attempt, progress: percent, runStartedAt: startedAt }).catch((error: unknown) => {
        log.debug({ err: error }, 'progress write failed');
      });
    }, this.options.progressIntervalMs);
    try {
      const context = this.context(row, attempt, definition, controller.signal, progress.report, log);
      const outcome = await untilAborted(processor.run(context), controller.signal);
      progress.stop();
      const output = definition.output.safeParse(outcome.result);
      if (!output.success) throw new PermanentJobError(`the processor returned an invalid result: ${output.error.message}`);
      const result = storableResult(output.data);
      const applied = await this.recordOutcome(row, run, { event: 'succeed', jobId: row.id, attempt, at: Date.now(), result, resultFileId: outcome.resultFileId, runStartedAt: startedAt }, log);
      metrics?.jobDuration.observe({ type: row.type, outcome: 'succeeded' }, (Date.now() - startedAt) / 1_000);
      if (!applied) {
        log.info('result discarded: the job was cancelled, completed elsewhere or taken over by another run');
        return await this.handOn(row, attempt, log, { run, undoStart: false });
      }
      metrics?.jobsSucceeded.inc({ type: row.type });
      if (definition.secretInputKeys) await this.removeSecretInput(row.id, definition.secretInputKeys, log);
      return DONE;
    } catch (error) {
      progress.stop();
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
      const aborted = reason instanceof JobAbortedError ? reason.kind : undefined;
      metrics?.jobDuration.observe({ type: row.type, outcome: aborted ?? 'failed' }, (Date.now() - startedAt) / 1_000);
      if (aborted === 'shutdown') return await this.release(row, run, log);
      if (aborted === 'lock-lost') {
        // Nothing is written: the job stays running, and the entry's next delivery runs it again
        // without charging this attempt, as after a worker that died. Running on here would make
        // two runs of one job at once, with the side effects of both.
        // Info: the runner warned once for the entry, saying why.
        log.info({ attempt }, 'job run stopped: this worker lost the lock on its queue entry; the entry is delivered again and the job runs again, one run at a time');
        return LOST;
      }
      if (aborted === 'cancelled' || aborted === 'not-runnable') {
        log.info({ reason: aborted }, 'job stopped');
        return await this.handOn(row, attempt, log, { run, undoStart: true });
      }
      const failure = aborted === 'timeout' ? new Error(`the job ran past its type's timeout of ${definition.timeoutMs} ms and was stopped`) : error;
      return await this.settleFailedAttempt(row, run, failure, definition, log);
    } finally {
      clearTimeout(timeout);
    }
  }

  /**
   * A failed attempt: the lifecycle says retry (queued again after its backoff) or fail
   * (dead-lettered), unless it failed on the platform's infrastructure (see defer).
   */
  private async settleFailedAttempt(row: DeliveryRow, run: JobRun, error: unknown, definition: JobTypeDefinition, log: Logger): Promise<Settlement> {
    const { metrics } = this.options;
    const { attempt, startedAt: runStartedAt } = run;
    const message = describe(error);
    const permanent = isPermanent(error);
    const dependency = permanent ? undefined : infrastructureFailure(error);
    if (dependency) return this.defer(row, run, { error, message, dependency }, definition.retry.backoffMs, log);
    const event = eventAfterFailedAttempt({ number: attempt, maxAttempts: row.max_attempts, permanent });
    if (event === 'retry') {
      const retryInMs = retryDelayMs(definition.retry.backoffMs, attempt);
      const applied = await this.recordOutcome(row, run, { event: 'retry', jobId: row.id, attempt, at: Date.now(), error: message, retryInMs, runStartedAt }, log);
      if (!applied) return this.handOn(row, attempt, log, { run, undoStart: false });
      metrics?.jobsRetried.inc({ type: row.type });
      log.info({ err: error, attempt, retryInMs }, 'job attempt failed; retrying');
      return { kind: 'again', row, delayMs: retryInMs };
    }
    const applied = await this.recordOutcome(row, run, { event: 'fail', jobId: row.id, attempt, at: Date.now(), error: message, runStartedAt }, log);
    if (!applied) return this.handOn(row, attempt, log, { run, undoStart: false });
    metrics?.jobsFailed.inc({ type: row.type });
    log.warn({ err: error, attempt }, 'job failed for good: dead-lettered');
    return { kind: 'dead', message };
  }

  /**
   * The attempt failed on the platform's infrastructure, not on the job: it goes back to the
   * queue after a backoff, its attempt not spent, and the deferral is counted. Past the
   * lifecycle's bound the job is dead-lettered (abandon) instead: its own input may be what
   * provokes the failure. While PostgreSQL is away, this write waits for it like any other.
   * `backoffMs`: the base of the backoff, the type's own where this worker knows the type.
   */
  private async defer(
    row: DeliveryRow,
    run: JobRun,
    failure: { error: unknown; message: string; dependency: Dependency },
    backoffMs: number,
    log: Logger,
  ): Promise<Settlement> {
    const { metrics } = this.options;
    const { attempt, startedAt: runStartedAt } = run;
    const { error, message, dependency } = failure;
    const at = Date.now();
    if (eventAfterInfrastructureFailure(row.deferrals) === 'abandon') {
      const reason = deferralsExhaustedReason(row.deferrals, { dependency, error: message });
      const applied = await this.recordOutcome(row, run, { event: 'abandon', jobId: row.id, attempt, at, reason, from: 'running', runStartedAt }, log);
      if (!applied) return this.handOn(row, attempt, log, { run, undoStart: false });
      metrics?.jobsFailed.inc({ type: row.type });
      log.warn({ err: error, attempt, dependency, deferrals: row.deferrals }, 'job failed on the platform\'s infrastructure once more past its deferrals: dead-lettered');
      return { kind: 'dead', message: reason };
    }
    const deferrals = deferralsAfter('defer', row.deferrals);
    const retryInMs = retryDelayMs(backoffMs, deferrals);
    const applied = await this.recordOutcome(row, run, { event: 'defer', jobId: row.id, attempt, at, dependency, error: message, deferrals, retryInMs, runStartedAt }, log);
    if (!applied) return this.handOn(row, attempt, log, { run, undoStart: false });
    metrics?.jobsDeferred.inc({ type: row.type, dependency });
    log.warn({ err: error, attempt, dependency, deferrals, retryInMs }, 'job attempt failed on the platform\'s infrastructure; deferred, the attempt not charged');
    return { kind: 'again', row, delayMs: retryInMs };
  }

  /** Shutdown interrupted the run: the job goes back to the queue, its attempt not spent. */
  private async release(row: DeliveryRow, run: JobRun, log: Logger): Promise<Settlement> {
    const released = await this.recordOutcome(row, run, { event: 'release', jobId: row.id, attempt: run.attempt, at: Date.now(), cause: 'shutdown', runStartedAt: run.startedAt }, log);
    if (!released) return this.handOn(row, run.attempt, log, { run, undoStart: false });
    log.info('job released back to the queue at shutdown');
    return { kind: 'again', row, delayMs: 0 };
  }

  /**
   * The delivery ends without an outcome of its own: its run obeyed a cancel, or what it
   * reported was refused because the job had moved on. A cancel reaches the worker by job id
   * alone, so it may come after the owner retried the job: the retry found this delivery
   * holding the job's queue entry, and BullMQ keeps one entry per id, so the retry's entry
   * was never added. Such a job is handed on in this delivery's entry ('again') instead of
   * being left behind: queued with no entry (until the relay's sweep finds it), or, when
   * this run's own start moved the retried job to running before the cancel stopped it,
   * running with no run (until the sweep counts the attempt as lost). That start is undone
   * first (`undoStart`): released, its attempt given back. The release applies only while
   * the job is running this attempt, in this run, so a cancel that still holds leaves it
   * cancelled.
   *
   * A redelivery whose own start was refused hands the job on too while the job runs the same
   * attempt: this delivery holds the job's queue entry, so the entry's next delivery takes
   * over whichever run the job is under now. That is a run whose start was still waiting for
   * PostgreSQL (its queue lock having lapsed) when this delivery read the job, and landed in
   * between; or the run this delivery read, its start refused only because a concurrent
   * statement moved the row under it (applyTransitions' row-version check). Left as it is,
   * the job would stay running with no run until the lost-running sweep. A delivery whose
   * own lock lapsed meanwhile cannot move the entry, which stays with its holder; a start
   * that failed with an error is not tried again this way.
   */
  private async handOn(row: DeliveryRow, attempt: number, log: Logger, ended?: { run: JobRun; undoStart: boolean }): Promise<Settlement> {
    const { transitions } = this.options;
    const start = ended ? await ended.run.started : undefined;
    if (ended?.undoStart && start === 'applied') {
      const released = await this.recordOutcome(row, ended.run, { event: 'release', jobId: row.id, attempt, at: Date.now(), cause: 'overtaken cancel', runStartedAt: ended.run.startedAt }, log);
      if (released) {
        log.info('the cancel this run obeyed came before a retry the run had started: released to run again');
        return { kind: 'again', row, delayMs: 0 };
      }
    }
    const current = await transitions.delivery(row.id);
    const plan = current && planDelivery(current);
    if (!current || !plan) return DONE;
    if (plan.from === 'queued') {
      log.info('the job was queued again while this delivery held its queue entry: handed on in that entry');
      return { kind: 'again', row: current, delayMs: 0 };
    }
    if (ended?.run.from !== 'running' || start !== 'refused' || plan.attempt !== attempt) return DONE;
    log.info(
      { readRunStartedAt: row.run_started_ms, latestRunStartedAt: current.run_started_ms },
      current.run_started_ms === row.run_started_ms
        ? "this redelivery's start was refused as a concurrent write moved the job's row: handed on in its entry to take the run over again"
        : "another run's start of this attempt landed after this delivery read the job: handed on in this delivery's entry to take that run over",
    );
    return { kind: 'again', row: current, delayMs: 0 };
  }

  /**
   * Records how the run ended. A write refused only by the run fence's row-version check (a
   * concurrent statement, such as the lock-lapse ledger's, moved the job's row while the job
   * stayed in this run) is written again: read afresh, the job still running this attempt
   * under this run's start, the outcome is still the job's to have. Dropped, the run's work
   * would be lost and the lost-running sweep would run the job again. A write refused for any
   * other reason (the job cancelled, finished, or taken over by another run) stays refused.
   */
  private async recordOutcome(row: DeliveryRow, run: JobRun, transition: WorkerTransition, log: Logger): Promise<boolean> {
    for (let rewrites = 0; ; rewrites += 1) {
      if (await this.record(row, transition)) return true;
      if (rewrites === OUTCOME_REWRITES) return false;
      const current = await this.options.transitions.delivery(row.id);
      if (current?.status !== 'running' || current.attempts !== run.attempt || current.run_started_ms !== run.startedAt) return false;
      log.info({ attempt: run.attempt, event: transition.event }, "the run's outcome was refused as a concurrent write moved the job's row; written again");
    }
  }

  /** Records one of the job's transitions, in the writer's lane for jobs of its input's size (TransitionWriter.record). */
  private record(row: DeliveryRow, transition: WorkerTransition): Promise<boolean> {
    return this.options.transitions.record(transition, { largeInput: !row.input_inline });
  }

  /** A secret the job's input carried (a reset token) is of no more use once it succeeded; a failure here leaves it to expire. */
  private async removeSecretInput(jobId: string, keys: readonly string[], log: Logger): Promise<void> {
    try {
      await removeSecretInput(this.options.batchPool, jobId, keys);
    } catch (error) {
      log.warn({ err: error }, 'could not remove the secret from a succeeded job\'s input');
    }
  }

  private context(
    row: DeliveryRow,
    attempt: number,
    definition: JobTypeDefinition,
    signal: AbortSignal,
    progress: (percent: number) => void,
    log: Logger,
  ): ProcessorContext<JobTypeDefinition> {
    const { files, generalPool } = this.options;
    // The files the input names in its FileId fields, whose owner the submit checked: the only ones the run may open.
    const named = new Set(fileReferences(definition.input, row.input).map(({ fileId }) => fileId));
    return {
      jobId: row.id,
      ownerId: row.owner_id,
      attempt,
      // Validated against the type's schema (defaults applied) when it was submitted.
      input: row.input as ProcessorContext<typeof definition>['input'],
      files: {
        // A file deleted since the job was submitted stays deleted: its later attempts would fail the same way.
        open: (fileId) =>
          (named.has(fileId) ? files.openContent(row.owner_id, fileId, signal) : Promise.reject(new PermanentJobError(`file ${fileId} is not named by a file field of the job's input`))).catch((error: unknown) => {
            throw error instanceof NotFoundError ? new PermanentJobError(error.message) : error;
          }),
        saveOutput: (name, contentType, body) =>
          files.saveJobOutput({ jobId: row.id, ownerId: row.owner_id, name, contentType, body, signal }).catch((error: unknown) => {
            // Another attempt would find the same files stored: the owner has to make room first.
            throw error instanceof QuotaExceededError ? new PermanentJobError(error.message) : error;
          }),
      },
      mailDrop: this.options.mailDrop,
      tasks: () => readTaskOutcomes(generalPool, row.id, signal),
      signal,
      progress,
      log,
    };
  }
}
