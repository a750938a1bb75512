import { crashLoopReason, planDelivery } from '../core/jobs/lifecycle';
import type { TransitionWriter } from '../core/jobs/transitions';
import type { Logger } from '../core/logger';
import type { Metrics } from '../core/metrics';
import { jobLogger } from './job-log';

/** What a job's own queue entry says of its runs that ended with their worker (BullMQ's Job fits). */
export interface InterruptedRuns {
  /** BullMQ's count: the times this entry's lock lapsed while it ran. */
  stalledCounter: number;
  /** The entry's data; its `crashes` are runs before the entry existed (see OwnEntryData). */
  data: unknown;
}

/**
 * Runs of an own entry's job that ended with their worker: BullMQ's count for this entry,
 * plus those before the entry existed (`crashes`, see OwnEntryData).
 */
export function runsEndedWithWorker(entry: InterruptedRuns): number {
  const crashes = (entry.data as { crashes?: unknown } | null)?.crashes;
  return entry.stalledCounter + (typeof crashes === 'number' && Number.isInteger(crashes) && crashes > 0 ? crashes : 0);
}

export interface CrashLoopOptions {
  /** Reads the job's delivery row and records its abandon event. */
  transitions: Pick<TransitionWriter, 'delivery' | 'record'>;
  /** Runs that may end with their worker before the job is a crash loop: BullMQ's maxStalledCount. */
  maxStalledCount: number;
  log: Logger;
  metrics?: Metrics;
}

/**
 * A job whose runs keep ending with their worker (it kills the process, exhausts its memory,
 * or blocks the event loop past its lock) is a crash loop: it is dead-lettered through the
 * lifecycle's abandon event instead of running again, with the count in its error.
 */
export class CrashLoops {
  constructor(private readonly options: CrashLoopOptions) {}

  /** Whether `runs` ended with their worker is more than a job is given. */
  isCrashLoop(runs: number): boolean {
    return runs > this.options.maxStalledCount;
  }

  /** Whether, after `runs` that ended with their worker, one more such run would make the job a crash loop. */
  isLastChance(runs: number): boolean {
    return runs === this.options.maxStalledCount;
  }

  /**
   * The runs of an entry BullMQ failed for its runs ending with their worker: what it
   * counts, and at least one more than the limit, since BullMQ gave up on it.
   */
  runsOfGivenUpEntry(entry: InterruptedRuns): number {
    return Math.max(runsEndedWithWorker(entry), this.options.maxStalledCount + 1);
  }

  /** Dead-letters a job whose runs ended with their worker `runs` times; answers the reason it was given. */
  async deadLetter(jobId: string, runs: number): Promise<string> {
    const { transitions, metrics } = this.options;
    const reason = crashLoopReason(runs);
    const row = await transitions.delivery(jobId);
    const plan = row && planDelivery(row);
    if (!row || !plan) return reason;
    const applied = await transitions.record({ event: 'abandon', jobId, attempt: row.attempts, at: Date.now(), reason, from: plan.from });
    if (applied) {
      metrics?.jobsFailed.inc({ type: row.type });
      jobLogger(this.options.log, row).error({ runs }, 'crash loop: job dead-lettered');
    }
    return reason;
  }
}
