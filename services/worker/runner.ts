import { randomUUID } from 'node:crypto';
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import { DEFAULT_JOBS_RUNNING_PER_USER, DEFAULT_WORKER_FILE_MEMORY_BUDGET_BYTES, DEFAULT_WORKER_INPUT_BUDGET_BYTES, QUEUES, STALL_SETTINGS } from '../contract';
import { readLockLapses, recordLockLapses, withdrawLockLapse, type DeliveryRow, type LockLapseRow } from '../core/db/jobs';
import type { FileService } from '../core/files/types';
import { crashLoopReason, planDelivery } from '../core/jobs/lifecycle';
import { TransitionWriter, type TransitionBatchOptions } from '../core/jobs/transitions';
import type { Logger } from '../core/logger';
import type { Metrics } from '../core/metrics';
import { createRedisConnection, redisAnswersNewConnection } from '../core/queue/connection';
import { workerConnectionName } from '../core/queue/keys';
import { WorkerSlots, type SlotHolder } from '../core/queue/worker-slots';
import { runsEndedWithWorker, type EnqueueRow, type QueueJobData, type Relay, type RequeueOptions } from '../core/queue/relay';
import type { ObjectStore } from '../core/storage/object-store';
import { withTimeout } from '../core/timeout';
import { CancelWatch } from './cancel-watch';
import { CrashLoops } from './crash-loop';
import { FairShare } from './fair-share';
import { JobExecutor, type Settlement } from './job-executor';
import { findProcessor } from './jobs';
import { LoopLiveness, type Liveness } from './liveness';
import { LockLapseLedger } from './lock-lapse-ledger';
import { LockWatch, type LockLapse } from './lock-watch';
import { createMailDrop } from './mail-drop';
import { observedMemoryBudget } from './observed-memory-budget';
import type { MailDrop, Processor } from './processor';
import { ownJobId, sharedJobIds } from './queue-entry';
import { RECOVERY_LANE_PARK_MS, RecoveryLane } from './recovery-lane';
import { SlotHolding } from './slot-holding';

/** How often a stopping worker whose close has not returned looks whether Redis answers anyone (and how long that look waits). */
const CLOSE_WITHOUT_REDIS_CHECK_MS = 500;
/** Worker errors after a warning are counted, not each logged as one, for this long (reportWorkerError). */
const WORKER_ERRORS_QUIET_MS = 5 * 60_000;
/** How BullMQ's 'error' event words a lock it could not renew (the 'lockRenewalFailed' event says the same, by entry). */
const LOCK_RENEWAL_FAILED = 'could not renew lock for job ';
/** A delivery in a job's own entry: it runs on a share of its user's (see FairShare). */
const OWN_ENTRY = { ownEntry: true } as const;

/** A delivery of a queue entry running here: its jobs, and when BullMQ added the entry (its `timestamp`, which entry lock lapses are recorded for). */
interface EntryDelivery {
  jobIds: readonly string[];
  entryAddedAt: number;
}

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
  /** Jobs of one user running at once across every worker (JOBS_RUNNING_PER_USER; its default when unset). */
  jobsRunningPerUser?: number;
  /** Bytes of large job inputs held at once (WORKER_INPUT_BUDGET_BYTES; its default when unset). */
  inputBudgetBytes?: number;
  /** Bytes file jobs hold at once for what grows with their file (WORKER_FILE_MEMORY_BUDGET_BYTES; its default when unset). */
  fileMemoryBudgetBytes?: number;
  /** Lock and stall detection; the contract's STALL_SETTINGS unless a test shortens them. */
  stall?: StallOptions;
  /** How long an idle worker's blocking wait lasts, in seconds (BullMQ drainDelay). Default 5. */
  drainDelaySeconds?: number;
  /** Progress of one job is written at most this often. Default 500 ms. */
  progressIntervalMs?: number;
  /** How often liveness probes the blocking connection. Default 5 s. */
  livenessProbeMs?: number;
  /** How often the jobs running here are looked up in PostgreSQL for a cancel that never reached the cancel channel. Default 5 s. */
  cancelCheckMs?: number;
  transitions?: TransitionBatchOptions;
  /**
   * WORKER_SLOT: a place only one worker process runs in at a time (see WorkerSlots). When
   * set, a start there releases at once the jobs the previous process in it left running.
   */
  slot?: string;
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

/**
 * The adapter between BullMQ and the job lifecycle. It owns the BullMQ worker and its
 * connections, the liveness of its loop, and shutdown. A queue entry names a job, or
 * several (a shared entry); the runner hands each job id to the JobExecutor, which runs
 * the job as the lifecycle decides and answers how its delivery ended, and moves the entry
 * to match: a job's own entry delayed for a retry or a release and failed for a dead
 * letter; a job of a shared entry queued again in an entry of its own. Jobs redelivered
 * after their worker ended go through the RecoveryLane, and CrashLoops dead-letters those
 * whose runs keep ending that way.
 *
 * An entry is acknowledged only after its jobs' transitions committed, so a crash in
 * between means redelivery, never loss.
 */
export class JobRunner {
  readonly id = randomUUID();
  private readonly options: Required<Omit<RunnerOptions, 'transitions' | 'slot'>> & Pick<RunnerOptions, 'transitions' | 'slot'>;
  private readonly transitions: TransitionWriter;
  private readonly executor: JobExecutor;
  private readonly crashLoops: CrashLoops;
  private readonly lockLapses: LockLapseLedger;
  private readonly recoveryLane: RecoveryLane;
  private readonly fairShare: FairShare;
  private readonly lockWatch: LockWatch;
  private worker: Worker<QueueJobData, void, string> | undefined;
  private connection: Redis | undefined;
  private readonly cancels: CancelWatch;
  private livenessTimer: NodeJS.Timeout | undefined;
  private readonly loop: LoopLiveness;
  private stopping: Promise<void> | undefined;
  /** This process's WORKER_SLOT, when it has one. */
  private readonly slot: SlotHolding;
  /** Queue entries this process runs now: BullMQ's concurrency counts these, each one job or a shared entry's several. */
  private entriesRunning = 0;
  /** When a worker error was last logged as a warning, and how many came since (reportWorkerError). */
  private workerErrors: { lastWarnedAt: number | undefined; since: number } = { lastWarnedAt: undefined, since: 0 };
  /** The deliveries of queue entries running here, by entry id: what a lost lock on an entry stops. */
  private readonly entryDeliveries = new Map<string, EntryDelivery>();
  /** Deliveries whose runs were stopped for a lost lock: each is stopped, and said, once. */
  private readonly stoppedDeliveries = new WeakSet<EntryDelivery>();

  constructor(
    private readonly deps: RunnerDeps,
    options: RunnerOptions,
  ) {
    this.options = {
      stall: { ...STALL_SETTINGS },
      drainDelaySeconds: 5,
      progressIntervalMs: 500,
      livenessProbeMs: 5_000,
      cancelCheckMs: 5_000,
      inputBudgetBytes: DEFAULT_WORKER_INPUT_BUDGET_BYTES,
      fileMemoryBudgetBytes: DEFAULT_WORKER_FILE_MEMORY_BUDGET_BYTES,
      jobsRunningPerUser: DEFAULT_JOBS_RUNNING_PER_USER,
      ...options,
    };
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) throw new RangeError('concurrency must be a positive integer');
    this.transitions = new TransitionWriter(
      { batchPool: deps.batchPool, generalPool: deps.generalPool, log: deps.log, relay: deps.relay, saturated: () => this.entriesRunning * 2 > options.concurrency },
      options.transitions,
    );
    this.fairShare = new FairShare({
      connection: () => this.connectionOrThrow(),
      prefix: options.prefix,
      perUser: this.options.jobsRunningPerUser,
      relay: deps.relay,
      log: deps.log,
      metrics: deps.metrics,
    });
    this.executor = new JobExecutor({
      transitions: this.transitions,
      batchPool: deps.batchPool,
      inputBudget: observedMemoryBudget('input', this.options.inputBudgetBytes, deps.metrics),
      fileMemoryBudget: observedMemoryBudget('file', this.options.fileMemoryBudgetBytes, deps.metrics),
      generalPool: deps.generalPool,
      files: deps.files,
      mailDrop: deps.mailDrop ?? createMailDrop(deps.store),
      processors: deps.processors ?? findProcessor,
      log: deps.log,
      metrics: deps.metrics,
      progressIntervalMs: this.options.progressIntervalMs,
      fairShare: this.fairShare,
    });
    this.lockLapses = new LockLapseLedger({
      write: (lapses) => recordLockLapses(deps.generalPool, lapses),
      read: (jobId, entryAddedAt) => readLockLapses(deps.generalPool, jobId, entryAddedAt),
      log: deps.log,
    });
    this.crashLoops = new CrashLoops({
      transitions: this.transitions,
      maxStalledCount: this.options.stall.maxStalledCount,
      lockLapses: (jobId, entryAddedAt) => this.lockLapses.lapsesOf(jobId, entryAddedAt),
      log: deps.log,
      metrics: deps.metrics,
    });
    this.lockWatch = new LockWatch({ lockDurationMs: this.options.stall.lockDurationMs, onLapse: (lapse) => void this.onLockLapse(lapse) });
    this.recoveryLane = new RecoveryLane({
      relay: deps.relay,
      excusedRuns: {
        record: (jobId, entryAddedAt) => recordLockLapses(deps.generalPool, [{ jobId, entryAddedAt }]),
        withdraw: (jobId, entryAddedAt) => withdrawLockLapse(deps.generalPool, jobId, entryAddedAt),
      },
      othersRunning: () => this.entriesRunning - 1,
      // The suspect's own entry fills a concurrency of 1: BullMQ fetches nothing more for this process meanwhile.
      fetching: (allowed) => {
        if (this.worker) this.worker.concurrency = allowed ? this.options.concurrency : 1;
      },
      log: deps.log,
    });
    this.slot = new SlotHolding(deps.log);
    this.cancels = new CancelWatch({ redisUrl: options.redisUrl, prefix: options.prefix, checkEveryMs: this.options.cancelCheckMs, generalPool: deps.generalPool, runs: this.executor, log: deps.log });
    this.loop = new LoopLiveness({ redisUrl: options.redisUrl, prefix: options.prefix, probeEveryMs: this.options.livenessProbeMs, metrics: deps.metrics });
  }

  /** Deliveries running in this process now. */
  get inFlight(): number {
    return this.executor.inFlight;
  }

  /** True while the loop shows progress: a job moved, the queue drained, or a probe came back on the blocking connection. */
  isAlive(maxSilenceMs: number): boolean {
    return this.loop.isAlive(maxSilenceMs);
  }

  /** What /healthz reports: a silent loop is `stuck` only while Redis answers others (see LoopLiveness). */
  liveness(maxSilenceMs: number): Liveness {
    return this.loop.liveness(maxSilenceMs);
  }

  async start(): Promise<void> {
    if (this.worker) throw new Error('the runner is already started');
    const { log } = this.deps;
    // Probing from the start: while start() waits for Redis, liveness says why the loop is silent.
    this.loop.touch();
    this.livenessTimer = setInterval(() => this.loop.probe(this.worker?.getBackend().blockingClient), this.options.livenessProbeMs);
    this.livenessTimer.unref();
    this.lockWatch.start();
    this.connection = createRedisConnection(this.options.redisUrl, 'worker', log, workerConnectionName(this.id));
    // A worker that starts while Redis is away waits here for it (see CancelWatch.start): its
    // liveness says `waiting for redis` meanwhile, and its readiness stays false until start() returns.
    await this.cancels.start();

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
    // Before the worker runs: its first stalled check then moves what the claim released.
    if (this.options.slot) {
      await this.slot.claim(new WorkerSlots(this.connectionOrThrow(), this.options.prefix), this.options.slot, { workerId: this.id, lockOwner: worker.id, claimedAt: Date.now() });
    }
    const touch = () => this.loop.touch();
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
    worker.on('locksRenewed', ({ jobIds }) => this.lockWatch.renewed(jobIds));
    worker.on('lockRenewalFailed', (entryIds) => this.stopLostEntries(entryIds, 'Redis refused to renew it'));
    worker.on('error', (error) => {
      // Said once, with what it means and what the worker did, by stopLostEntries.
      if (error.message.startsWith(LOCK_RENEWAL_FAILED)) log.debug({ err: error }, 'worker error');
      else this.reportWorkerError(error);
    });
    worker.run().catch((error: unknown) => log.error({ err: error }, 'worker loop stopped'));
    await worker.waitUntilReady();
    this.loop.touch();
    log.info({ workerId: this.id, concurrency: this.options.concurrency }, 'worker started');
  }

  /** Whether this process still holds its worker slot (see SlotHolding.holds). */
  holdsSlot(): Promise<{ held: boolean; holder?: SlotHolder } | undefined> {
    return this.slot.holds();
  }

  /** Records this process in its worker slot again when Redis lost the record, unless it is stopping (see SlotHolding.restore). */
  async restoreSlot(): Promise<boolean> {
    return !this.stopping && (await this.slot.restore());
  }

  private connectionOrThrow(): Redis {
    if (!this.connection) throw new Error('the runner is not started');
    return this.connection;
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
    this.cancels.stopChecking();
    this.lockWatch.stop();
    log.info({ inFlight: this.inFlight, graceMs }, 'worker stopping: finishing in-flight jobs');
    const graceTimer = setTimeout(() => {
      if (this.inFlight > 0) log.warn({ inFlight: this.inFlight }, 'grace period over: releasing the jobs still running');
      this.executor.abortAll('shutdown');
    }, graceMs);
    // Past this, what still waits (a processor that ignores its signal, a state write while
    // PostgreSQL is away) is abandoned: its job's lock lapses and another worker takes it over.
    const abandonAfterMs = graceMs + 5_000;
    const abandon = <T>(work: Promise<T>) => withTimeout(work, abandonAfterMs, 'abandoned at shutdown').catch(() => undefined);
    let workerClosed = false;
    const steps: [string, () => Promise<unknown>][] = [
      ['worker', async () => this.worker && (await abandon(this.closeWorker(this.worker).then(() => (workerClosed = true))))],
      ['transitions', () => abandon(this.transitions.close())],
      ['lock lapses', () => abandon(this.lockLapses.close())],
      ['user shares', async () => this.fairShare.close()],
      // A worker whose close was abandoned may still hold locks: the slot stays claimed, so a process starting in it releases them.
      ['worker slot', async () => workerClosed && (await abandon(this.slot.leave()))],
      ['cancel subscriber', async () => this.cancels.close()],
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

  /**
   * BullMQ's close() waits for its fetch loop, whose blocking wait never returns while Redis
   * answers no one (its disconnect() waits for a live connection too). Once no delivery of
   * ours runs, such a worker has nothing left to finish or release: it stops without that
   * close instead of holding the shutdown for the whole grace period, into the
   * orchestrator's SIGKILL. A delivery still running keeps the usual wait.
   */
  private async closeWorker(worker: Worker<QueueJobData, void, string>): Promise<void> {
    let closed = false;
    const closing = worker.close().finally(() => {
      closed = true;
    });
    for (;;) {
      // Unref'd: when the close wins the race, the pause left behind must not hold the process open.
      await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, CLOSE_WITHOUT_REDIS_CHECK_MS).unref())]);
      if (closed) return;
      if (this.entriesRunning === 0 && this.inFlight === 0 && !(await redisAnswersNewConnection(this.options.redisUrl, CLOSE_WITHOUT_REDIS_CHECK_MS))) {
        if (closed) return;
        this.deps.log.warn('Redis answers no one and no job runs here: the worker stops without closing its queue connection');
        closing.catch(() => undefined);
        return;
      }
    }
  }

  private async processCounted(job: Job<QueueJobData, void, string>, token: string | undefined): Promise<void> {
    this.entriesRunning += 1;
    const entryId = job.id;
    const jobIds = sharedJobIds(job.data) ?? [ownJobId(job.data)].filter((id): id is string => id !== undefined);
    const delivery: EntryDelivery = { jobIds, entryAddedAt: job.timestamp };
    if (entryId !== undefined) {
      this.entryDeliveries.set(entryId, delivery);
      this.lockWatch.taken(entryId);
    }
    try {
      await this.process(job, token);
    } finally {
      this.entriesRunning -= 1;
      this.recoveryLane.entryEnded();
      // A later delivery of the same entry may have begun while this one wound down: it keeps its place.
      if (entryId !== undefined && this.entryDeliveries.get(entryId) === delivery) {
        this.entryDeliveries.delete(entryId);
        this.lockWatch.released(entryId);
      }
    }
  }

  /**
   * While Redis hangs, each of BullMQ's commands times out in turn (every 10-15 s, with a
   * stack): an outage would fill the log with lines nobody can act on, and the outage itself
   * is reported by the metrics, liveness and the relay. The first error of a quiet spell is a
   * warning; the rest within WORKER_ERRORS_QUIET_MS are counted, and the next warning says
   * how many there were.
   */
  private reportWorkerError(error: Error): void {
    const now = Date.now();
    if (this.workerErrors.lastWarnedAt !== undefined && now - this.workerErrors.lastWarnedAt < WORKER_ERRORS_QUIET_MS) {
      this.workerErrors.since += 1;
      this.deps.log.debug({ err: error }, 'worker error');
      return;
    }
    const { since } = this.workerErrors;
    this.deps.log.warn({ err: error, ...(since > 0 && { earlierErrors: since }) }, since > 0 ? 'worker error (the earlier ones since the last such line are logged at debug and counted in earlierErrors)' : 'worker error');
    this.workerErrors = { lastWarnedAt: now, since: 0 };
  }

  /**
   * This worker's locks on these entries are gone: they ran out while Redis was away past
   * the lock duration (a pause, a partition) or while this process's loop stood still, or
   * Redis refused a renewal because another process released them. BullMQ keeps running
   * such a job and only says so, while its stalled check hands the entry out again, to this
   * worker or another: two runs of one job at once. The runs here are stopped instead, and
   * the entry's next delivery runs the job. Answers the runs it stopped.
   */
  private stopLostEntries(entryIds: readonly string[], why: string): LockLapseRow[] {
    const stopped: LockLapseRow[] = [];
    for (const entryId of entryIds) {
      const delivery = this.entryDeliveries.get(entryId);
      if (!delivery || this.stoppedDeliveries.has(delivery)) continue;
      this.stoppedDeliveries.add(delivery);
      const { jobIds, entryAddedAt } = delivery;
      this.deps.log.warn({ queueJobId: entryId, jobIds }, `lost the lock on a running queue entry (${why}): stopping its runs here; the entry's next delivery runs them (or, if Redis lost the entry, the relay's sweep about a minute later)`);
      for (const jobId of jobIds) {
        this.executor.abort(jobId, 'lock-lost');
        stopped.push({ jobId, entryAddedAt });
      }
    }
    return stopped;
  }

  /**
   * The LockWatch found locks that ran out. Their runs stop. BullMQ will count each as a run
   * that ended with its worker, as it counts a crash; when this process's loop kept running,
   * the lapse was Redis's doing, not the job's, and is recorded so the crash loop count
   * leaves it out: a long job is not dead-lettered for outages of Redis it lived through.
   * When PostgreSQL is away too, the ledger keeps the lapse until it can be written.
   */
  private async onLockLapse({ entryIds, loopStood }: LockLapse): Promise<void> {
    const lapses = this.stopLostEntries(entryIds, loopStood ? "this worker's event loop stood still for more than half the lock's duration" : "Redis did not take its renewals within the lock's duration");
    if (lapses.length === 0) return;
    this.deps.metrics?.jobLockLapses.inc({ cause: loopStood ? 'worker' : 'redis' }, lapses.length);
    // A job waiting in the recovery lane has this run excused on its row already.
    const unexcused = lapses.filter((lapse) => !this.recoveryLane.excuses(lapse));
    if (!loopStood && unexcused.length > 0) await this.lockLapses.record(unexcused);
  }

  /**
   * A shared entry's jobs run side by side; a job's own entry runs its job, unless its runs
   * kept ending with their worker: a crash loop is dead-lettered, and a job on its last
   * chance (one more such run would make it a crash loop) runs alone in the recovery lane or
   * is parked until the lane frees. A job interrupted fewer times runs beside the others: a
   * crash of a worker running a hundred jobs would otherwise have them run one at a time.
   * While the lane is held, what else reaches this process is parked until it frees.
   */
  private async process(job: Job<QueueJobData, void, string>, token: string | undefined): Promise<void> {
    const data: unknown = job.data;
    const jobIds = sharedJobIds(data);
    if (jobIds) {
      if (this.recoveryLane.isHeld) return this.parkOutsideLane(job, token, 'held back');
      return this.processShared(job, jobIds);
    }
    const jobId = ownJobId(data);
    if (!jobId) {
      this.deps.log.error({ queueJobId: job.id }, 'queue entry without a valid job id: dropped');
      return;
    }
    const runs = await this.crashLoops.charged(jobId, runsEndedWithWorker(job), job.timestamp);
    if (this.crashLoops.isCrashLoop(runs)) {
      const reason = crashLoopReason(runs);
      await this.crashLoops.deadLetter(jobId, reason);
      throw new UnrecoverableError(reason);
    }
    if (!this.crashLoops.isLastChance(runs)) {
      if (this.recoveryLane.isHeld) return this.parkOutsideLane(job, token, 'held back');
      return this.settleOwnEntry(job, token, await this.executor.execute(jobId, OWN_ENTRY));
    }
    if (!this.recoveryLane.enter(job.id)) return this.parkOutsideLane(job, token, 'suspect');
    try {
      const delivery = job.id === undefined ? undefined : this.entryDeliveries.get(job.id);
      // A worker stopping while the suspect waited leaves it to the next: its grace went to the jobs it waited for.
      const notNow = () => (delivery !== undefined && this.stoppedDeliveries.has(delivery) ? 'lost' : this.stopping ? 'later' : undefined);
      const alone = await this.recoveryLane.runAlone({ jobId, entryAddedAt: job.timestamp }, notNow, () => this.executor.execute(jobId, OWN_ENTRY));
      if (alone.ran) return await this.settleOwnEntry(job, token, alone.value);
      // Lost, the entry is not this worker's to move; lapsing, its lock is to lapse with this stopping worker (see RecoveryLane.withdrawExcuse).
      if (alone.why !== 'later') throw new DelayedError();
      await job.moveToDelayed(Date.now() + RECOVERY_LANE_PARK_MS, token);
      throw new DelayedError();
    } finally {
      this.recoveryLane.leave();
    }
  }

  /** Parks an entry in `delayed` while the recovery lane is held (see RecoveryLane): a suspect waits its turn, anything else the lane's end. */
  private async parkOutsideLane(job: Job<QueueJobData, void, string>, token: string | undefined, as: 'suspect' | 'held back'): Promise<never> {
    await job.moveToDelayed(Date.now() + RECOVERY_LANE_PARK_MS, token);
    if (as === 'suspect') this.recoveryLane.park(job.id);
    else this.recoveryLane.holdBack(job.id);
    throw new DelayedError();
  }

  /** Moves a job's own entry to match how its delivery ended: delayed to run again, failed when dead-lettered. */
  private async settleOwnEntry(job: Job<QueueJobData, void, string>, token: string | undefined, settlement: Settlement): Promise<void> {
    if (settlement.kind === 'done') return;
    // The entry is not this worker's to move any more; DelayedError tells BullMQ to leave it as it is.
    if (settlement.kind === 'lost') throw new DelayedError();
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
   * to an entry of its own carrying the crash (into the recovery lane once that is its last chance).
   */
  private async processShared(job: Job<QueueJobData, void, string>, jobIds: string[]): Promise<void> {
    if (job.stalledCounter > 0) return this.splitShared(job, jobIds);
    const settlements = await Promise.allSettled(jobIds.map((jobId) => this.executor.execute(jobId)));
    const again: Extract<Settlement, { kind: 'again' }>[] = [];
    let lost = false;
    settlements.forEach((settlement, index) => {
      if (settlement.status === 'rejected') this.deps.log.warn({ err: settlement.reason, jobId: jobIds[index] }, 'delivery failed; the relay sweep will hand the job over again');
      else if (settlement.value.kind === 'again') again.push(settlement.value);
      else if (settlement.value.kind === 'lost') lost = true;
    });
    await Promise.all(again.map(({ row, delayMs }) => this.queueAgain([row], { delayMs })));
    // Delivered again, the entry is split (splitShared): each job still runnable gets an entry of its own.
    if (lost) throw new DelayedError();
    await this.forgetSharedEntry(jobIds);
  }

  /**
   * Gives each still runnable job of a shared entry whose run ended with its worker an entry
   * of its own, carrying the crashes charged to it: the entry's count, less the runs stopped
   * for locks Redis let lapse.
   */
  private async splitShared(entry: Job<QueueJobData, void, string>, jobIds: string[]): Promise<void> {
    const rows = (await Promise.all(jobIds.map((jobId) => this.transitions.delivery(jobId)))).filter((row): row is DeliveryRow => row !== undefined && planDelivery(row) !== undefined);
    // An entry of its own each, so each carries its own charge (a shared entry holds ten jobs at most; this path is rare).
    await Promise.all(rows.map(async (row) => this.queueAgain([row], { crashes: await this.crashLoops.charged(row.id, entry.stalledCounter, entry.timestamp) })));
    await this.forgetSharedEntry(jobIds);
    if (rows.length > 0) this.deps.log.warn({ jobs: rows.length, runs: entry.stalledCounter }, 'a shared queue entry was delivered again after a run that ended with its worker or lost its lock: its jobs each get an entry of their own');
  }

  /** Queues a job BullMQ gave up on again, its interrupted runs having been mostly Redis's lapses (see onCrashLoop). */
  private async queueAgainAfterLapses(jobId: string, runs: number, charged: number): Promise<void> {
    const row = await this.transitions.delivery(jobId);
    if (!row || !planDelivery(row)) return;
    this.deps.log.info({ jobId, runs, charged }, 'BullMQ gave up on a job whose runs were stopped for locks Redis let lapse, not by crashes: it is queued again');
    // The new entry carries what was charged: the lapses recorded are this entry's, not the next one's.
    await this.queueAgain([row], { crashes: charged });
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

  /**
   * BullMQ gave up on an entry whose runs kept ending with their worker. A job's own entry:
   * the job is dead-lettered, unless enough of those runs were stopped for locks Redis let
   * lapse that the job is no crash loop: it is queued again in a new entry that carries the
   * count. A shared entry never got to be split: its jobs are, now.
   */
  private async onCrashLoop(job: Job<QueueJobData, void, string>): Promise<void> {
    const data: unknown = job.data;
    const jobIds = sharedJobIds(data);
    try {
      if (jobIds) await this.splitShared(job, jobIds);
      else {
        const jobId = ownJobId(data);
        if (!jobId) return;
        const runs = this.crashLoops.runsOfGivenUpEntry(job);
        const plan = this.crashLoops.planGivenUp(await this.crashLoops.charged(jobId, runs, job.timestamp));
        if (plan.event === 'abandon') await this.crashLoops.deadLetter(jobId, plan.reason);
        else await this.queueAgainAfterLapses(jobId, runs, plan.crashes);
      }
    } catch (error) {
      // The relay's sweep finds the entry finished in Redis and dead-letters or hands over its jobs from there.
      this.deps.log.warn({ err: error, queueJobId: job.id }, 'could not settle a crash-looping queue entry; the relay sweep will');
    }
  }
}
