import { randomUUID } from 'node:crypto';
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import { validate as isUuid } from 'uuid';
import { MAX_JOBS_PER_QUEUE_ENTRY, MAX_JSON_DEPTH, QUEUES, STALL_SETTINGS, type JobTypeDefinition } from '../contract';
import { listTaskOutcomes } from '../core/db/fanouts';
import { removeSecretInput, type DeliveryRow, type Keyset } from '../core/db/jobs';
import type { FileService } from '../core/files/types';
import { crashLoopReason, eventAfterFailedAttempt, planDelivery } from '../core/jobs/lifecycle';
import { TransitionWriter, type TransitionBatchOptions } from '../core/jobs/transitions';
import { JsonTooDeepError, toStorable } from '../core/json';
import type { Logger } from '../core/logger';
import type { Metrics } from '../core/metrics';
import { createRedisConnection } from '../core/queue/connection';
import { cancelChannel } from '../core/queue/keys';
import type { EnqueueRow, QueueJobData, Relay, RequeueOptions } from '../core/queue/relay';
import type { ObjectStore } from '../core/storage/object-store';
import { withTimeout } from '../core/timeout';
import { retryDelayMs } from './backoff';
import { findProcessor } from './jobs';
import { createMailDrop } from './mail-drop';
import { PermanentJobError, type MailDrop, type Processor, type ProcessorContext, type TaskOutcome } from './processor';

export interface StallOptions {
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalledCount: number;
}

export interface RunnerOptions {
  redisUrl: string;
  /** BullMQ key prefix (QUEUE_PREFIX). */
  prefix: string;
  /** Jobs run at once by this process (WORKER_CONCURRENCY). */
  concurrency: number;
  /** Lock and stall detection; the contract's STALL_SETTINGS unless a test shortens them. */
  stall?: StallOptions;
  /** How long an idle worker's blocking wait lasts, in seconds (BullMQ drainDelay). Default 5. */
  drainDelaySeconds?: number;
  /** Progress of one job is written at most this often. Default 500 ms. */
  progressIntervalMs?: number;
  /** How often liveness probes the blocking connection. Default 5 s. */
  livenessProbeMs?: number;
  transitions?: TransitionBatchOptions;
}

export interface RunnerDeps {
  /** Runs the delivery reads and transition writes: the hot batch statements (see createBatchPool). */
  batchPool: Pool;
  /** Runs what is not a primary-key lookup: a reduce step's read of its tasks, the cancel of a failed fan-out job's tasks (see createGeneralPool). */
  generalPool: Pool;
  files: FileService;
  store: ObjectStore;
  log: Logger;
  metrics?: Metrics;
  /** The processor for a job type; the built-in registry unless a test brings its own. */
  processors?: (type: string) => Processor | undefined;
  /** Where email.send delivers; the object store's mail drop unless given (SMTP_URL). */
  mailDrop?: MailDrop;
  /**
   * Gives jobs of a shared queue entry entries of their own (a retry, a release, a split
   * after a crash), calls parked entries back to the recovery lane, and hands the reduce
   * steps of fan-out jobs this worker's writes finish to BullMQ at once.
   */
  relay: Pick<Relay, 'requeue' | 'forgetSharedEntry' | 'promote'>;
}

/** Tasks a reduce step reads per round trip. */
const TASK_PAGE_SIZE = 1_000;

type AbortKind = 'cancelled' | 'not-runnable' | 'shutdown' | 'timeout';

/**
 * How one delivery of a job ended, for the entry that carried it: nothing more to do; queue
 * the job again (a retry after its backoff, or a release at shutdown); or dead-lettered.
 */
type Settlement = { kind: 'done' } | { kind: 'again'; row: DeliveryRow; delayMs: number } | { kind: 'dead'; message: string };

const DONE: Settlement = { kind: 'done' };

/** Why a running job's signal was aborted. */
export class JobAbortedError extends Error {
  constructor(readonly kind: AbortKind) {
    super(`job aborted: ${kind}`);
    this.name = this.constructor.name;
  }
}

const MAX_ERROR_LENGTH = 2_000;
/**
 * How long a redelivered job parked outside a busy recovery lane waits at most. The lane
 * calls the next parked job as soon as it frees; this is for a call that went to another
 * worker, or a lane whose process ended.
 */
const RECOVERY_LANE_PARK_MS = 5_000;
/** Results may nest a little deeper than inputs (echo wraps its payload). */
const MAX_RESULT_DEPTH = MAX_JSON_DEPTH * 2;

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.length > MAX_ERROR_LENGTH ? `${message.slice(0, MAX_ERROR_LENGTH)}…` : message;
}

function isPermanent(error: unknown): boolean {
  return error instanceof PermanentJobError || (error as Error | undefined)?.name === 'PermanentJobError';
}

/** Settles with `work`, or rejects as soon as `signal` aborts: a processor that ignores its signal still gives its slot back. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  // The processor may still settle later; nobody is listening by then.
  work.catch(() => undefined);
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error as Error);
      },
    );
  });
}

/**
 * The adapter between BullMQ and the job lifecycle. A queue entry names a job, or several
 * (a shared entry); for each, the runner reads the job from PostgreSQL (state, type, owner,
 * input: nothing from Redis is trusted), asks the lifecycle whether and as which attempt it
 * may run, runs its processor with an abort signal and the type's timeout, and reports each
 * event to the TransitionWriter. The lifecycle decides what a failure means (retry or
 * dead-letter); this class only moves the entry to match: a job's own entry delayed for a
 * retry or a release and failed for a dead letter; a job of a shared entry queued again in
 * an entry of its own.
 *
 * An entry is acknowledged only after its jobs' transitions committed, so a crash in
 * between means redelivery, never loss.
 */
export class JobRunner {
  readonly id = randomUUID();
  private readonly options: Required<Omit<RunnerOptions, 'transitions'>> & Pick<RunnerOptions, 'transitions'>;
  private readonly transitions: TransitionWriter;
  private readonly mailDrop: MailDrop;
  private readonly processors: (type: string) => Processor | undefined;
  /** Abort controllers of the deliveries running here, by job id (one job may be delivered twice at once). */
  private readonly active = new Map<string, Set<AbortController>>();
  private worker: Worker<QueueJobData, void, string> | undefined;
  private connection: Redis | undefined;
  private subscriber: Redis | undefined;
  private livenessTimer: NodeJS.Timeout | undefined;
  private probing = false;
  private lastActivity = Date.now();
  private stopping: Promise<void> | undefined;
  /** Queue entries this process runs now: BullMQ's concurrency counts these, each one job or a shared entry's several. */
  private entriesRunning = 0;
  /** Whether a redelivered job (its previous run ended with its worker) is running here now: see process(). */
  private recoveryLaneBusy = false;
  /** Entries this process parked outside its busy recovery lane, in the order they came. */
  private readonly parkedSuspects = new Set<string>();

  constructor(
    private readonly deps: RunnerDeps,
    options: RunnerOptions,
  ) {
    this.options = {
      stall: { ...STALL_SETTINGS },
      drainDelaySeconds: 5,
      progressIntervalMs: 500,
      livenessProbeMs: 5_000,
      ...options,
    };
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) throw new RangeError('concurrency must be a positive integer');
    this.transitions = new TransitionWriter(
      { batchPool: deps.batchPool, generalPool: deps.generalPool, log: deps.log, relay: deps.relay, saturated: () => this.entriesRunning * 2 > options.concurrency },
      options.transitions,
    );
    this.mailDrop = deps.mailDrop ?? createMailDrop(deps.store);
    this.processors = deps.processors ?? findProcessor;
  }

  /** Deliveries running in this process now. */
  get inFlight(): number {
    let count = 0;
    for (const controllers of this.active.values()) count += controllers.size;
    return count;
  }

  /** Alive while the loop shows progress: a job moved, the queue drained, or a probe came back on the blocking connection. */
  isAlive(maxSilenceMs: number): boolean {
    return Date.now() - this.lastActivity <= maxSilenceMs;
  }

  async start(): Promise<void> {
    if (this.worker) throw new Error('the runner is already started');
    const { log } = this.deps;
    this.connection = createRedisConnection(this.options.redisUrl, 'worker', log);
    this.subscriber = createRedisConnection(this.options.redisUrl, 'subscriber', log);
    this.subscriber.on('message', (_channel: string, jobId: string) => this.abort(jobId, 'cancelled'));
    await this.subscriber.subscribe(cancelChannel(this.options.prefix));

    const { stall } = this.options;
    const worker = new Worker<QueueJobData, void, string>(QUEUES.jobs, (job, token) => this.processCounted(job, token), {
      connection: this.connection,
      prefix: this.options.prefix,
      concurrency: this.options.concurrency,
      lockDuration: stall.lockDurationMs,
      stalledInterval: stall.stalledIntervalMs,
      maxStalledCount: stall.maxStalledCount,
      drainDelay: this.options.drainDelaySeconds,
      autorun: false,
      name: `worker-${this.id}`,
    });
    this.worker = worker;
    const touch = () => this.touch();
    worker.on('active', touch);
    worker.on('completed', touch);
    worker.on('drained', touch);
    worker.on('failed', (job, error) => {
      touch();
      // BullMQ fails a job without calling us when its runs ended with their worker more
      // than maxStalledCount times: a crash loop, which the lifecycle dead-letters.
      if (job?.deferredFailure) void this.onCrashLoop(job);
      else if (job && !(error instanceof UnrecoverableError)) log.warn({ jobId: job.id, err: error }, 'BullMQ failed a job outside the runner');
    });
    worker.on('error', (error) => log.warn({ err: error }, 'worker error'));
    worker.run().catch((error: unknown) => log.error({ err: error }, 'worker loop stopped'));
    await worker.waitUntilReady();
    this.touch();
    this.livenessTimer = setInterval(() => this.probeBlockingConnection(), this.options.livenessProbeMs);
    this.livenessTimer.unref();
    log.info({ workerId: this.id, concurrency: this.options.concurrency }, 'worker started');
  }

  /**
   * Graceful stop: take no new jobs, let running ones finish for `graceMs`, then abort the
   * rest, which are released back to the queue (not failed, attempt not spent). Flushes
   * pending transitions and closes the connections. Idempotent.
   */
  stop(graceMs: number): Promise<void> {
    this.stopping ??= this.shutdown(graceMs);
    return this.stopping;
  }

  private async shutdown(graceMs: number): Promise<void> {
    const { log } = this.deps;
    if (this.livenessTimer) clearInterval(this.livenessTimer);
    log.info({ inFlight: this.inFlight, graceMs }, 'worker stopping: finishing in-flight jobs');
    const graceTimer = setTimeout(() => {
      if (this.inFlight > 0) log.warn({ inFlight: this.inFlight }, 'grace period over: releasing the jobs still running');
      for (const jobId of this.active.keys()) this.abort(jobId, 'shutdown');
    }, graceMs);
    // Past this, what still waits (a processor that ignores its signal, a state write while
    // PostgreSQL is away) is abandoned: its job's lock lapses and another worker takes it over.
    const abandonAfterMs = graceMs + 5_000;
    const abandon = <T>(work: Promise<T>) => withTimeout(work, abandonAfterMs, 'abandoned at shutdown').catch(() => undefined);
    const steps: [string, () => Promise<unknown>][] = [
      ['worker', async () => this.worker && (await abandon(this.worker.close()))],
      ['transitions', () => abandon(this.transitions.close())],
      ['cancel subscriber', async () => this.subscriber?.disconnect()],
      ['worker connection', async () => this.connection?.disconnect()],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (error) {
        log.warn({ err: error, step: name }, 'worker shutdown step failed');
      }
    }
    clearTimeout(graceTimer);
    log.info('worker stopped');
  }

  private touch(): void {
    this.lastActivity = Date.now();
    this.deps.metrics?.workerLastActivity.set(this.lastActivity / 1_000);
  }

  /**
   * A command on the blocking connection is answered only after the pending blocking wait
   * returns (at most drainDelay when idle): a reply proves the loop's connection moves.
   */
  private probeBlockingConnection(): void {
    const worker = this.worker;
    if (!worker || this.probing) return;
    const blocking = worker.getBackend().blockingClient;
    if (!blocking) return;
    this.probing = true;
    blocking
      .then((client) => client.get(`${this.options.prefix}:liveness-probe`))
      .then(() => this.touch())
      .catch(() => undefined)
      .finally(() => {
        this.probing = false;
      });
  }

  private abort(jobId: string, kind: AbortKind): void {
    for (const controller of this.active.get(jobId) ?? []) {
      if (controller.signal.aborted) continue;
      this.deps.log.info({ jobId, reason: kind }, 'aborting job');
      controller.abort(new JobAbortedError(kind));
    }
  }

  private async processCounted(job: Job<QueueJobData, void, string>, token: string | undefined): Promise<void> {
    this.entriesRunning += 1;
    try {
      await this.process(job, token);
    } finally {
      this.entriesRunning -= 1;
    }
  }

  /**
   * A job whose previous run ended with its worker may be what killed it. Such jobs run one
   * at a time here (the recovery lane); the others are parked in `delayed`, outside the
   * active set, so if the suspect kills this worker too, only its own count of interrupted
   * runs grows and a crash loop is dead-lettered without taking the jobs beside it along.
   * When the lane frees, it calls the next parked job back at once: one crash can leave
   * hundreds of suspects (every job of the shared entries it interrupted), and a lane that
   * waited for each to come back on its own would take minutes over them.
   */
  private async process(job: Job<QueueJobData, void, string>, token: string | undefined): Promise<void> {
    const data: unknown = job.data;
    const jobIds = sharedJobIds(data);
    if (jobIds) return this.processShared(job, jobIds);
    const jobId = ownJobId(data);
    if (!jobId) {
      this.deps.log.error({ queueJobId: job.id }, 'queue entry without a valid job id: dropped');
      return;
    }
    const runs = runsEndedWithWorker(job);
    if (runs > this.options.stall.maxStalledCount) {
      const reason = await this.abandonCrashLoop(jobId, runs);
      throw new UnrecoverableError(reason);
    }
    if (runs === 0) return this.settleOwnEntry(job, token, await this.execute(jobId));
    if (this.recoveryLaneBusy) {
      await job.moveToDelayed(Date.now() + RECOVERY_LANE_PARK_MS, token);
      if (job.id) this.parkedSuspects.add(job.id);
      throw new DelayedError();
    }
    this.recoveryLaneBusy = true;
    if (job.id) this.parkedSuspects.delete(job.id);
    try {
      return await this.settleOwnEntry(job, token, await this.execute(jobId));
    } finally {
      this.recoveryLaneBusy = false;
      void this.callNextSuspect();
    }
  }

  /** Moves the first parked entry still waiting back to the queue; it takes the lane if it reaches a worker whose lane is free. */
  private async callNextSuspect(): Promise<void> {
    for (const entryId of this.parkedSuspects) {
      if (this.recoveryLaneBusy) return;
      this.parkedSuspects.delete(entryId);
      if (await this.deps.relay.promote(entryId)) return;
    }
  }

  /** Moves a job's own entry to match how its delivery ended: delayed to run again, failed when dead-lettered. */
  private async settleOwnEntry(job: Job<QueueJobData, void, string>, token: string | undefined, settlement: Settlement): Promise<void> {
    if (settlement.kind === 'done') return;
    if (settlement.kind === 'dead') {
      // Failing the entry too keeps BullMQ's failed count a mirror of the dead-letter set.
      throw new UnrecoverableError(settlement.message);
    }
    await job.moveToDelayed(Date.now() + settlement.delayMs, token);
    throw new DelayedError();
  }

  /**
   * Runs the jobs of a shared entry side by side. A job to be queued again gets an entry
   * of its own, so the shared entry completes once each of its jobs is settled. An entry
   * delivered again after its worker ended is split instead: each job still runnable goes
   * to an entry of its own carrying the crash, and runs in the recovery lane.
   */
  private async processShared(job: Job<QueueJobData, void, string>, jobIds: string[]): Promise<void> {
    if (job.stalledCounter > 0) return this.splitShared(jobIds, job.stalledCounter);
    const settlements = await Promise.allSettled(jobIds.map((jobId) => this.execute(jobId)));
    const again: Extract<Settlement, { kind: 'again' }>[] = [];
    settlements.forEach((settlement, index) => {
      if (settlement.status === 'rejected') this.deps.log.warn({ err: settlement.reason, jobId: jobIds[index] }, 'delivery failed; the relay sweep will hand the job over again');
      else if (settlement.value.kind === 'again') again.push(settlement.value);
    });
    await Promise.all(again.map(({ row, delayMs }) => this.queueAgain([row], { delayMs })));
    await this.forgetSharedEntry(jobIds);
  }

  /** Gives each still runnable job of a shared entry whose worker ended an entry of its own, carrying that crash. */
  private async splitShared(jobIds: string[], crashes: number): Promise<void> {
    const rows = (await Promise.all(jobIds.map((jobId) => this.transitions.delivery(jobId)))).filter((row): row is DeliveryRow => row !== undefined && planDelivery(row) !== undefined);
    await this.queueAgain(rows, { crashes });
    await this.forgetSharedEntry(jobIds);
    if (rows.length > 0) this.deps.log.warn({ jobs: rows.length, crashes }, 'a shared queue entry outlived its worker: its jobs each get an entry of their own');
  }

  /** Entries of their own for these jobs; when Redis cannot take them, they stay queued in PostgreSQL and the relay sweep hands them over. */
  private async queueAgain(rows: readonly DeliveryRow[], options: RequeueOptions): Promise<void> {
    const entries: EnqueueRow[] = rows.map((row) => ({ id: row.id, type: row.type, priority: row.priority }));
    const queued = await this.deps.relay.requeue(entries, 'requeue', options);
    if (queued < entries.length) this.deps.log.warn({ jobIds: rows.map((row) => row.id) }, 'could not queue jobs again; the relay sweep will hand them over');
  }

  /** The relay sweep prunes what this could not forget: the entry completes either way, its jobs being settled. */
  private async forgetSharedEntry(jobIds: string[]): Promise<void> {
    await this.deps.relay.forgetSharedEntry(jobIds).catch((error: unknown) => this.deps.log.debug({ err: error }, 'could not forget a shared entry\'s jobs; the relay sweep will'));
  }

  private async execute(jobId: string): Promise<Settlement> {
    const controller = new AbortController();
    // Registered before the delivery read so a cancel arriving meanwhile is not missed.
    const controllers = this.active.get(jobId) ?? new Set<AbortController>();
    controllers.add(controller);
    this.active.set(jobId, controllers);
    try {
      const row = await this.transitions.delivery(jobId);
      const plan = row && planDelivery(row);
      if (!row || !plan) {
        this.deps.log.info({ jobId, status: row?.status, attempts: row?.attempts }, 'delivery skipped: the job is no longer runnable');
        return DONE;
      }
      return await this.run(row, plan, controller, this.jobLog(row));
    } finally {
      controllers.delete(controller);
      if (controllers.size === 0) this.active.delete(jobId);
      this.deps.metrics?.workerLastActivity.set(Date.now() / 1_000);
    }
  }

  private async run(row: DeliveryRow, plan: { attempt: number; from: 'queued' | 'running' }, controller: AbortController, log: Logger): Promise<Settlement> {
    const { metrics } = this.deps;
    const { attempt } = plan;
    const startedAt = Date.now();
    metrics?.jobsStarted.inc({ type: row.type });
    if (attempt === 1 && plan.from === 'queued') metrics?.jobTimeToStart.observe({ type: row.type }, (startedAt - row.created_ms) / 1_000);

    // Not awaited: it is written with the next tick (merged with the outcome when the job is
    // that quick). If it does not apply, the job was cancelled or finished elsewhere: stop.
    this.transitions.record({ event: 'start', jobId: row.id, attempt, at: startedAt, from: plan.from }).then(
      (applied) => {
        if (!applied) controller.abort(new JobAbortedError('not-runnable'));
      },
      (error: unknown) => {
        log.warn({ err: error }, 'could not record the job start');
        controller.abort(new JobAbortedError('not-runnable'));
      },
    );

    const processor = this.processors(row.type);
    if (!processor) return this.finish(row, attempt, new PermanentJobError(`no processor for job type "${row.type}"`), undefined, log);
    const { definition } = processor;
    const timeout = setTimeout(() => controller.abort(new JobAbortedError('timeout')), definition.timeoutMs);
    const progress = this.progressReporter(row.id, attempt, log);
    try {
      const context = this.context(row, attempt, definition, controller.signal, progress.report, log);
      const outcome = await untilAborted(processor.run(context), controller.signal);
      progress.stop();
      const output = definition.output.safeParse(outcome.result);
      if (!output.success) throw new PermanentJobError(`the processor returned an invalid result: ${output.error.message}`);
      const result = storableResult(output.data);
      const applied = await this.transitions.record({ event: 'succeed', jobId: row.id, attempt, at: Date.now(), result, resultFileId: outcome.resultFileId });
      metrics?.jobDuration.observe({ type: row.type, outcome: 'succeeded' }, (Date.now() - startedAt) / 1_000);
      if (applied) {
        metrics?.jobsSucceeded.inc({ type: row.type });
        if (definition.secretInputKeys) await this.removeSecretInput(row.id, definition.secretInputKeys, log);
      } else log.info('result discarded: the job was cancelled or completed elsewhere');
      return DONE;
    } catch (error) {
      progress.stop();
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
      const aborted = reason instanceof JobAbortedError ? reason.kind : undefined;
      metrics?.jobDuration.observe({ type: row.type, outcome: aborted ?? 'failed' }, (Date.now() - startedAt) / 1_000);
      if (aborted === 'shutdown') return await this.release(row, attempt, log);
      if (aborted === 'cancelled' || aborted === 'not-runnable') {
        log.info({ reason: aborted }, 'job stopped');
        return DONE;
      }
      const failure = aborted === 'timeout' ? new Error(`the job ran past its type's timeout of ${definition.timeoutMs} ms and was stopped`) : error;
      return await this.finish(row, attempt, failure, definition, log);
    } finally {
      clearTimeout(timeout);
    }
  }

  /** A failed attempt: the lifecycle says retry (queued again after its backoff) or fail (dead-lettered). */
  private async finish(row: DeliveryRow, attempt: number, error: unknown, definition: JobTypeDefinition | undefined, log: Logger): Promise<Settlement> {
    const { metrics } = this.deps;
    const message = describe(error);
    const event = eventAfterFailedAttempt({ number: attempt, maxAttempts: row.max_attempts, permanent: isPermanent(error) || !definition });
    if (event === 'retry' && definition) {
      const retryInMs = retryDelayMs(definition.retry.backoffMs, attempt);
      const applied = await this.transitions.record({ event: 'retry', jobId: row.id, attempt, at: Date.now(), error: message, retryInMs });
      if (!applied) return DONE;
      metrics?.jobsRetried.inc({ type: row.type });
      log.info({ err: error, attempt, retryInMs }, 'job attempt failed; retrying');
      return { kind: 'again', row, delayMs: retryInMs };
    }
    const applied = await this.transitions.record({ event: 'fail', jobId: row.id, attempt, at: Date.now(), error: message });
    if (!applied) return DONE;
    metrics?.jobsFailed.inc({ type: row.type });
    log.warn({ err: error, attempt }, 'job failed for good: dead-lettered');
    return { kind: 'dead', message };
  }

  /** A secret the job's input carried (a reset token) is of no more use once it succeeded; a failure here leaves it to expire. */
  private async removeSecretInput(jobId: string, keys: readonly string[], log: Logger): Promise<void> {
    try {
      await removeSecretInput(this.deps.batchPool, jobId, keys);
    } catch (error) {
      log.warn({ err: error }, 'could not remove the secret from a succeeded job\'s input');
    }
  }

  /** Shutdown interrupted the run: the job goes back to the queue, its attempt not spent. */
  private async release(row: DeliveryRow, attempt: number, log: Logger): Promise<Settlement> {
    const released = await this.transitions.record({ event: 'release', jobId: row.id, attempt, at: Date.now() });
    if (!released) return DONE;
    log.info('job released back to the queue at shutdown');
    return { kind: 'again', row, delayMs: 0 };
  }

  /**
   * BullMQ gave up on an entry whose runs kept ending with their worker. A job's own entry:
   * the job is dead-lettered. A shared entry never got to be split: its jobs are, now.
   */
  private async onCrashLoop(job: Job<QueueJobData, void, string>): Promise<void> {
    const data: unknown = job.data;
    const jobIds = sharedJobIds(data);
    try {
      if (jobIds) await this.splitShared(jobIds, job.stalledCounter);
      else {
        const jobId = ownJobId(data);
        if (jobId) await this.abandonCrashLoop(jobId, Math.max(runsEndedWithWorker(job), this.options.stall.maxStalledCount + 1));
      }
    } catch (error) {
      // The relay's sweep finds the entry finished in Redis and dead-letters or hands over its jobs from there.
      this.deps.log.warn({ err: error, queueJobId: job.id }, 'could not settle a crash-looping queue entry; the relay sweep will');
    }
  }

  /** Dead-letters a job whose runs ended with their worker `runs` times; the reason it was given. */
  private async abandonCrashLoop(jobId: string, runs: number): Promise<string> {
    const reason = crashLoopReason(runs);
    const row = await this.transitions.delivery(jobId);
    const plan = row && planDelivery(row);
    if (!row || !plan) return reason;
    const applied = await this.transitions.record({ event: 'abandon', jobId, attempt: row.attempts, at: Date.now(), reason, from: plan.from });
    if (applied) {
      this.deps.metrics?.jobsFailed.inc({ type: row.type });
      this.jobLog(row).error({ runs }, 'crash loop: job dead-lettered');
    }
    return reason;
  }

  /**
   * What the runner and the processor log for one job carries its id and the request id of
   * the call that submitted it (DESIGN: correlation). A child logger per job, as the API has
   * one per request, rather than an AsyncLocalStorage: on Node 20 that turns on promise hooks
   * for every promise the process makes, a tenth of the worker's CPU per job (bench/FINDINGS.md).
   */
  private jobLog(row: DeliveryRow): Logger {
    return this.deps.log.child(row.request_id === null ? { jobId: row.id } : { jobId: row.id, requestId: row.request_id });
  }

  private context(
    row: DeliveryRow,
    attempt: number,
    definition: JobTypeDefinition,
    signal: AbortSignal,
    progress: (percent: number) => void,
    log: Logger,
  ): ProcessorContext<JobTypeDefinition> {
    const { files } = this.deps;
    return {
      jobId: row.id,
      ownerId: row.owner_id,
      attempt,
      // Validated against the type's schema (defaults applied) when it was submitted.
      input: row.input as ProcessorContext<typeof definition>['input'],
      files: {
        open: (fileId) => files.openContent(row.owner_id, fileId, signal),
        saveOutput: (name, contentType, body) => files.saveJobOutput({ jobId: row.id, ownerId: row.owner_id, name, contentType, body, signal }),
      },
      mailDrop: this.mailDrop,
      tasks: () => this.taskOutcomes(row.id, signal),
      signal,
      progress,
      log,
    };
  }

  private async *taskOutcomes(parentId: string, signal: AbortSignal): AsyncIterable<TaskOutcome> {
    let after: Keyset | undefined;
    for (;;) {
      signal.throwIfAborted();
      const rows = await listTaskOutcomes(this.deps.generalPool, parentId, TASK_PAGE_SIZE, after);
      for (const row of rows) {
        yield { id: row.id, input: row.input, status: row.status, result: row.result, resultFileId: row.result_file_id, error: row.error };
      }
      const last = rows.at(-1);
      if (!last || rows.length < TASK_PAGE_SIZE) return;
      after = { at: last.created_us, id: last.id };
    }
  }

  /** Throttles one job's progress to a write per interval, always ending on the latest value. */
  private progressReporter(jobId: string, attempt: number, log: Logger): { report(percent: number): void; stop(): void } {
    let latest = 0;
    let lastWrite = 0;
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const write = () => {
      timer = undefined;
      if (stopped) return;
      lastWrite = Date.now();
      this.transitions.record({ event: 'progress', jobId, attempt, progress: latest }).catch((error: unknown) => {
        log.debug({ err: error }, 'progress write failed');
      });
    };
    return {
      report: (percent) => {
        if (stopped || !Number.isFinite(percent)) return;
        latest = Math.min(100, Math.max(0, percent));
        if (timer) return;
        const wait = lastWrite + this.options.progressIntervalMs - Date.now();
        if (wait <= 0) write();
        else {
          timer = setTimeout(write, wait);
          timer.unref();
        }
      },
      stop: () => {
        stopped = true;
        if (timer) clearTimeout(timer);
      },
    };
  }
}

/** The job ids of a shared entry, or undefined when the data is not one (Redis is not trusted). */
function sharedJobIds(data: unknown): string[] | undefined {
  const jobIds = (data as { jobIds?: unknown } | null)?.jobIds;
  if (!Array.isArray(jobIds) || jobIds.length === 0 || jobIds.length > MAX_JOBS_PER_QUEUE_ENTRY) return undefined;
  return jobIds.every((id): id is string => typeof id === 'string' && isUuid(id)) ? jobIds : undefined;
}

function ownJobId(data: unknown): string | undefined {
  const jobId = (data as { jobId?: unknown } | null)?.jobId;
  return typeof jobId === 'string' && isUuid(jobId) ? jobId : undefined;
}

/**
 * Runs of an own entry's job that ended with their worker: BullMQ's count for this entry,
 * plus those before the entry existed (`crashes`, see OwnEntryData).
 */
function runsEndedWithWorker(job: Job<QueueJobData, void, string>): number {
  const crashes = (job.data as { crashes?: unknown } | null)?.crashes;
  return job.stalledCounter + (typeof crashes === 'number' && Number.isInteger(crashes) && crashes > 0 ? crashes : 0);
}

/** The result as PostgreSQL can store it; a result nested absurdly deep is a bug of the processor, not worth a retry. */
function storableResult(result: unknown): unknown {
  try {
    return toStorable(result, MAX_RESULT_DEPTH);
  } catch (error) {
    if (error instanceof JsonTooDeepError) throw new PermanentJobError(`the processor returned a result ${error.message}`);
    throw error;
  }
}
