import { setTimeout as delay } from 'node:timers/promises';
import { sleep } from '../../../services/contract';
import { defineProcessor, type Processor } from '../../../services/worker/processor';
import { statusOf, submission, waitFor, type EngineFixture } from './fixture';
import { FAST_STALL } from './stall';

/** Runs of a counted sleep processor: how many began, how many run now, and the most at once. */
export interface SleepRuns {
  runs: number;
  running: number;
  mostAtOnce: number;
}

/** A sleep processor that counts its runs, to see a job run again and never twice at once. */
export function countedSleep(): { processor: Processor; sleeps: SleepRuns; reset(): void } {
  const sleeps: SleepRuns = { runs: 0, running: 0, mostAtOnce: 0 };
  const processor = defineProcessor(sleep, async ({ input, signal }) => {
    sleeps.runs += 1;
    sleeps.running += 1;
    sleeps.mostAtOnce = Math.max(sleeps.mostAtOnce, sleeps.running);
    try {
      await delay(input.ms, undefined, { signal });
      return { result: { sleptMs: input.ms } };
    } finally {
      sleeps.running -= 1;
    }
  }) as unknown as Processor;
  return { processor, sleeps, reset: () => Object.assign(sleeps, { runs: 0, running: 0, mostAtOnce: 0 }) };
}

/**
 * Runs a 6 s sleep (one attempt) through one outage per run, each past its lock, one more
 * than a crash loop is allowed runs, and expects the job to succeed at attempt 1 with a
 * lock lapse recorded per outage and never two runs at once.
 */
export async function expectSleepLivesThroughLapses(fx: EngineFixture, sleeps: SleepRuns, outage: () => Promise<void>): Promise<void> {
  const outages = FAST_STALL.maxStalledCount + 1;
  const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 6_000 }, maxAttempts: 1 }));
  for (let run = 1; run <= outages; run += 1) {
    // Begun, and its start written: a start still waiting for PostgreSQL when the outage ends
    // may land after the next delivery read the job, which then hands it on to one more
    // delivery (job-executor.test.ts over PostgreSQL): a run more than this test counts.
    await waitFor(`run ${run} to begin`, async () => sleeps.runs === run && sleeps.running === 1 && (await startsOf(fx, job.id)) === run, 30_000);
    await outage();
  }

  await waitFor('the job to succeed', async () => {
    const status = await statusOf(fx, job.id);
    // A dead letter is the fault this guards against: fail at once, with its reason.
    if (status === 'failed') throw new Error(`dead-lettered: ${(await fx.one<{ error: string }>('SELECT error FROM jobs WHERE id = $1', [job.id])).error}`);
    return status === 'succeeded';
  }, 40_000);
  expect(sleeps.runs).toBe(outages + 1);
  expect(sleeps.mostAtOnce).toBe(1);
  const row = await fx.one<{ attempts: number; lock_lapses: number }>('SELECT attempts, lock_lapses FROM jobs WHERE id = $1', [job.id]);
  expect(row).toEqual({ attempts: 1, lock_lapses: outages });
}

/** The starts of the job written so far: its audit rows into running. */
async function startsOf(fx: EngineFixture, jobId: string): Promise<number> {
  const { starts } = await fx.one<{ starts: number }>("SELECT count(*)::int AS starts FROM job_events WHERE job_id = $1 AND to_status = 'running'", [jobId]);
  return starts;
}
