import { crashesCharged, isCrashLoop, isLastChanceBeforeCrashLoop, planDelivery, planGivenUpEntry, type GivenUpPlan } from '../core/jobs/lifecycle';
import type { TransitionWriter } from '../core/jobs/transitions';
import type { Logger } from '../core/logger';
import type { Metrics } from '../core/metrics';
import { runsOfGivenUpEntry, type InterruptedRuns } from '../core/queue/relay';
import { jobLogger } from './job-log';

export interface CrashLoopOptions {
  /** Reads the job's delivery row and records its abandon event. */
  transitions: Pick<TransitionWriter, 'delivery' | 'record'>;
  /** Runs that may end with their worker before the job is a crash loop: BullMQ's maxStalledCount. */
  maxStalledCount: number;
  /** Runs of a job a live worker stopped for a lapsed lock on the entry added at `entryAddedAt` (jobs.lock_lapses): not crashes of the job's. */
  lockLapses: (jobId: string, entryAddedAt: number) => Promise<number>;
  log: Logger;
  metrics?: Metrics;
}

/**
 * A job whose runs keep ending with their worker (it kills the process, exhausts its memory,
 * or blocks the event loop past its lock) is a crash loop: it is dead-lettered through the
 * lifecycle's abandon event instead of running again, with the count in its error. Runs a
 * live worker stopped because Redis let their lock lapse are not counted (see `charged`).
 */
export class CrashLoops {
  constructor(private readonly options: CrashLoopOptions) {}

  /** Whether `runs` ended with their worker is more than a job is given. */
  isCrashLoop(runs: number): boolean {
    return isCrashLoop(runs, this.options.maxStalledCount);
  }

  /** Whether, after `runs` that ended with their worker, one more such run would make the job a crash loop. */
  isLastChance(runs: number): boolean {
    return isLastChanceBeforeCrashLoop(runs, this.options.maxStalledCount);
  }

  /** What becomes of a job whose own entry BullMQ gave up on, `charged` of its runs counting against it (the lifecycle's planGivenUpEntry). */
  planGivenUp(charged: number): GivenUpPlan {
    return planGivenUpEntry(charged, this.options.maxStalledCount);
  }

  /** The runs of an entry BullMQ gave up on for its runs ending with their worker (see runsOfGivenUpEntry). */
  runsOfGivenUpEntry(entry: InterruptedRuns): number {
    return runsOfGivenUpEntry(entry, this.options.maxStalledCount);
  }

  /**
   * Of `runs` that ended with their worker, counted for the entry added at `entryAddedAt`,
   * those that count against the job: less the runs a live worker stopped because Redis let
   * that entry's lock lapse. When the lapses cannot be read, every run counts: a crash loop
   * must end even while PostgreSQL cannot say which runs were Redis's doing.
   */
  async charged(jobId: string, runs: number, entryAddedAt: number): Promise<number> {
    if (runs === 0) return 0;
    try {
      return crashesCharged(runs, await this.options.lockLapses(jobId, entryAddedAt));
    } catch (error) {
      this.options.log.warn({ err: error, jobId, runs }, 'could not read the lock lapses of a redelivered job: each of its interrupted runs counts as a crash');
      return runs;
    }
  }

  /** Dead-letters a crash-looping job with `reason` (the lifecycle's crashLoopReason). */
  async deadLetter(jobId: string, reason: string): Promise<void> {
    const { transitions, metrics } = this.options;
    const row = await transitions.delivery(jobId);
    const plan = row && planDelivery(row);
    if (!row || !plan) return;
    const applied = await transitions.record({ event: 'abandon', jobId, attempt: row.attempts, at: Date.now(), reason, from: plan.from });
    if (applied) {
      metrics?.jobsFailed.inc({ type: row.type });
      jobLogger(this.options.log, row).error({ reason }, 'crash loop: job dead-lettered');
    }
  }
}
