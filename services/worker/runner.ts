import { randomUUID } from 'node:crypto';
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import { QUEUES, STALL_SETTINGS, type JobTypeDefinition } from '../contract';
import { runWithContext } from '../core/context';
import type { RunState } from '../core/db/jobs';
import type { FileService } from '../core/files/types';
import { isRunnable, TransitionWriter, type TransitionBatchOptions } from '../core/jobs/transitions';
import type { Logger } from '../core/logger';
import type { Metrics } from '../core/metrics';
import { createRedisConnection } from '../core/queue/connection';
import { cancelChannel } from '../core/queue/keys';
import type { QueueJobData } from '../core/queue/relay';
import type { ObjectStore } from '../core/storage/object-store';
import { retryDelayMs } from './backoff';
import { findProcessor } from './jobs';
import { createOutbox } from './outbox';
import { PermanentJobError, type Outbox, type Processor, type ProcessorContext } from './processor';

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
  pool: Pool;
  /** Runs the run-state reads and transition writes (see createBatchPool); `pool` when not given. */
  batchPool?: Pool;
  files: FileService;
  store: ObjectStore;
  log: Logger;
  metrics?: Metrics;
  /** The processor for a job type; the built-in registry unless a test brings its own. */
  processors?: (type: string) => Processor | undefined;
}

type AbortKind = 'cancelled' | 'not-runnable' | 'shutdown';

/** Why a running job's signal was aborted. */
export class JobAbortedError extends Error {
  constructor(readonly kind: AbortKind) {
    super(`job aborted: ${kind}`);
    this.name = this.constructor.name;
  }
}

/** An attempt ran past its type's timeoutMs: it fails like any other error, retried while attempts remain. */
export class JobTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`attempt timed out after ${timeoutMs} ms`);
    this.name = this.constructor.name;
  }
}


const MAX_ERROR_LENGTH = 2_000;

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.length > MAX_ERROR_LENGTH ? `${message.slice(0, MAX_ERROR_LENGTH)}…` : message;
}

function isPermanent(error: unknown): boolean {
  return error instanceof PermanentJobError || (error as Error | undefined)?.name === 'PermanentJobError';
}

/**
 * Runs jobs from the queue: one BullMQ Worker whose processor checks the row is still
 * runnable, runs the type's processor with an abort signal, validates its output and
 * reports every transition to the TransitionWriter (batched, conditional writes).
 *
 * Attempts and backoff are ours, not BullMQ's: BullMQ jobs carry attempts 1; a failed
 * attempt with budget left is written `queued` in PostgreSQL and the same BullMQ job is
 * moved to `delayed` with the next attempt number. The BullMQ job is acknowledged only
 * after its transition committed, so a crash in between means redelivery, never loss.
 */
export class JobRunner {
  readonly id = randomUUID();
  private readonly options: Required<Omit<RunnerOptions, 'transitions'>> & Pick<RunnerOptions, 'transitions'>;
  private readonly transitions: TransitionWriter;
  private readonly outbox: Outbox;
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
    this.transitions = new TransitionWriter({ pool: deps.batchPool ?? deps.pool, log: deps.log }, options.transitions);
    this.outbox = createOutbox(deps.store);
    this.processors = deps.processors ?? findProcessor;
  }

  /** Deliveries running in this process now. */
  get inFlight(): number {
    let count = 0;
    for (const controllers of this.active.values()) count += controllers.size;
    return count;
  }

  /** When the worker loop last showed progress (ms since the epoch). */
  get lastActivityAt(): number {
    return this.lastActivity;
  }

  /** Alive while the loop shows progress: a job moved, the queue drained, or a probe came back on the blocking connection. */
  isAlive(maxSilenceMs: number): boolean {
    return Date.now() - this.lastActivity <= maxSilenceMs;
  }

  async start(): Promise<void> {
    if (this.worker) throw new Error('the runner is already started');
    const { log } = this.deps;
    this.connection = createRedisConnection(this.options.redisUrl, 'worker', log);
    this.subscriber = createRedisConnection(this.options.redisUrl, 'client', log);
    this.subscriber.on('message', (_channel: string, jobId: string) => this.abort(jobId, 'cancelled'));
    await this.subscriber.subscribe(cancelChannel(this.options.prefix));

    const { stall } = this.options;
    const worker = new Worker<QueueJobData, void, string>(QUEUES.jobs, (job, token) => this.process(job, token), {
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
      // Stall-limit failures happen outside our processor; the relay sweep reconciles the row.
      if (job && !(error instanceof UnrecoverableError)) log.warn({ jobId: job.id, err: error }, 'BullMQ failed a job outside the runner');
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
    // A processor that ignores its signal must not hold the process forever; its job's lock
    // lapses and another worker takes it over.
    const abandonAfterMs = graceMs + 5_000;
    const steps: [string, () => Promise<unknown>][] = [
      ['worker', async () => this.worker && (await raceTimeout(this.worker.close(), abandonAfterMs))],
      ['transitions', () => this.transitions.close()],
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

  private process(job: Job<QueueJobData, void, string>, token: string | undefined): Promise<void> {
    const { data } = job;
    return runWithContext({ jobId: data.jobId, requestId: data.requestId ?? undefined }, () => this.execute(job, token));
  }

  private async execute(job: Job<QueueJobData, void, string>, token: string | undefined): Promise<void> {
    const { data } = job;
    const { log, metrics } = this.deps;
    const controller = new AbortController();
    // Registered before the runnable check so a cancel arriving meanwhile is not missed.
    const controllers = this.active.get(data.jobId) ?? new Set<AbortController>();
    controllers.add(controller);
    this.active.set(data.jobId, controllers);
    try {
      const state = await this.transitions.runState(data.jobId);
      if (!state || !isRunnable(state, data.attempt)) {
        log.info({ status: state?.status, attempts: state?.attempts, attempt: data.attempt }, 'delivery skipped: the job is no longer runnable');
        return;
      }
      const processor = this.processors(data.type);
      if (!processor) {
        // Started and failed in one write: a worker that cannot run the type fails it at once.
        const at = Date.now();
        void this.transitions.record({ kind: 'start', jobId: data.jobId, attempt: data.attempt, at, from: state.status === 'running' ? 'running' : 'queued' });
        await this.finishFailed(job, state, new PermanentJobError(`no processor for job type "${data.type}"`), at);
        return;
      }
      await this.run(job, token, state, processor, controller);
    } finally {
      controllers.delete(controller);
      if (controllers.size === 0) this.active.delete(data.jobId);
      metrics?.workerLastActivity.set(Date.now() / 1_000);
    }
  }

  private async run(
    job: Job<QueueJobData, void, string>,
    token: string | undefined,
    state: RunState,
    processor: Processor,
    controller: AbortController,
  ): Promise<void> {
    const { data } = job;
    const { log, metrics } = this.deps;
    const startedAt = Date.now();
    metrics?.jobsStarted.inc({ type: data.type });
    if (data.attempt === 1 && state.status === 'queued') metrics?.jobTimeToStart.observe({ type: data.type }, (startedAt - data.submittedAt) / 1_000);

    // Not awaited: it is written with the next tick (merged with the outcome when the job is
    // that quick). If it does not apply, the job was cancelled or finished elsewhere: stop.
    this.transitions
      .record({ kind: 'start', jobId: data.jobId, attempt: data.attempt, at: startedAt, from: state.status === 'running' ? 'running' : 'queued' })
      .then(
        (applied) => {
          if (!applied) controller.abort(new JobAbortedError('not-runnable'));
        },
        (error: unknown) => {
          log.warn({ err: error }, 'could not record the job start');
          controller.abort(new JobAbortedError('not-runnable'));
        },
      );

    const progress = this.progressReporter(data.jobId, data.attempt);
    const { timeoutMs } = processor.definition;
    const timeout = setTimeout(() => controller.abort(new JobTimeoutError(timeoutMs)), timeoutMs);
    try {
      const context = this.context(data, processor.definition, controller.signal, progress.report);
      const outcome = await processor.run(context);
      clearTimeout(timeout);
      progress.stop();
      const output = processor.definition.output.safeParse(outcome.result);
      if (!output.success) throw new PermanentJobError(`the processor returned an invalid result: ${output.error.message}`);
      const applied = await this.transitions.record({
        kind: 'succeeded',
        jobId: data.jobId,
        attempt: data.attempt,
        at: Date.now(),
        result: output.data,
        resultFileId: outcome.resultFileId,
      });
      metrics?.jobDuration.observe({ type: data.type, outcome: 'succeeded' }, (Date.now() - startedAt) / 1_000);
      if (applied) metrics?.jobsSucceeded.inc({ type: data.type });
      else log.info('result discarded: the job was cancelled or completed elsewhere');
    } catch (thrown) {
      clearTimeout(timeout);
      progress.stop();
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
      if (reason instanceof JobAbortedError) {
        await this.handleAbort(job, token, reason.kind, startedAt);
        return;
      }
      // A processor aborted by its timeout throws its own AbortError; the timeout is the cause worth recording.
      const error = reason instanceof JobTimeoutError ? reason : thrown;
      metrics?.jobDuration.observe({ type: data.type, outcome: 'failed' }, (Date.now() - startedAt) / 1_000);
      if (isPermanent(error) || data.attempt >= state.max_attempts) {
        await this.finishFailed(job, state, error, Date.now());
        return;
      }
      await this.scheduleRetry(job, token, processor.definition, error);
    }
  }

  private async handleAbort(job: Job<QueueJobData, void, string>, token: string | undefined, kind: AbortKind, startedAt: number): Promise<void> {
    const { data } = job;
    this.deps.metrics?.jobDuration.observe({ type: data.type, outcome: kind }, (Date.now() - startedAt) / 1_000);
    if (kind !== 'shutdown') {
      // The row is already cancelled (or finished elsewhere); the BullMQ job just completes.
      this.deps.log.info({ reason: kind }, 'job stopped');
      return;
    }
    const released = await this.transitions.record({ kind: 'released', jobId: data.jobId, attempt: data.attempt, at: Date.now() });
    if (!released) return;
    await job.moveToDelayed(Date.now(), token);
    this.deps.log.info('job released back to the queue at shutdown');
    throw new DelayedError();
  }

  private async finishFailed(job: Job<QueueJobData, void, string>, state: RunState, error: unknown, at: number): Promise<void> {
    const { data } = job;
    const message = describe(error);
    const applied = await this.transitions.record({ kind: 'failed', jobId: data.jobId, attempt: Math.max(data.attempt, state.attempts), at, error: message });
    if (!applied) return;
    this.deps.metrics?.jobsFailed.inc({ type: data.type });
    this.deps.log.warn({ err: error, attempt: data.attempt }, 'job failed for good: dead-lettered');
    // Also fail the BullMQ job, so BullMQ's failed count mirrors the dead-letter set.
    throw new UnrecoverableError(message);
  }

  private async scheduleRetry(
    job: Job<QueueJobData, void, string>,
    token: string | undefined,
    definition: JobTypeDefinition,
    error: unknown,
  ): Promise<void> {
    const { data } = job;
    const retryInMs = retryDelayMs(definition.retry.backoffMs, data.attempt);
    const applied = await this.transitions.record({
      kind: 'retrying',
      jobId: data.jobId,
      attempt: data.attempt,
      at: Date.now(),
      error: describe(error),
      retryInMs,
    });
    if (!applied) return;
    this.deps.metrics?.jobsRetried.inc({ type: data.type });
    this.deps.log.info({ err: error, attempt: data.attempt, retryInMs }, 'job attempt failed; retrying');
    await job.updateData({ ...data, attempt: data.attempt + 1 });
    await job.moveToDelayed(Date.now() + retryInMs, token);
    throw new DelayedError();
  }

  private context(
    data: QueueJobData,
    definition: JobTypeDefinition,
    signal: AbortSignal,
    progress: (percent: number) => void,
  ): ProcessorContext<JobTypeDefinition> {
    const { files, log } = this.deps;
    return {
      jobId: data.jobId,
      ownerId: data.ownerId,
      attempt: data.attempt,
      // Validated against the type's schema (defaults applied) when it was submitted.
      input: data.input as ProcessorContext<typeof definition>['input'],
      files: {
        open: (fileId) => files.openContent(data.ownerId, fileId, signal),
        saveOutput: (name, contentType, body) => files.saveJobOutput({ jobId: data.jobId, ownerId: data.ownerId, name, contentType, body, signal }),
      },
      outbox: this.outbox,
      signal,
      progress,
      log,
    };
  }

  /** Throttles one job's progress to a write per interval, always ending on the latest value. */
  private progressReporter(jobId: string, attempt: number): { report(percent: number): void; stop(): void } {
    let latest = 0;
    let lastWrite = 0;
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const write = () => {
      timer = undefined;
      if (stopped) return;
      lastWrite = Date.now();
      this.transitions.record({ kind: 'progress', jobId, attempt, progress: latest }).catch((error: unknown) => {
        this.deps.log.debug({ err: error }, 'progress write failed');
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

function raceTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
