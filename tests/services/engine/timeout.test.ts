/**
 * A job type's timeoutMs bounds one attempt: the worker aborts the processor and fails the
 * attempt with the timeout as its error (retried while attempts remain). A worker's
 * shutdown drain is sized from the longest timeout, which this makes true.
 */
import { LONGEST_JOB_TIMEOUT_MS, JOB_TYPES } from '../../../services/contract';
import { sleep } from '../../../services/contract/jobs';
import { findProcessor } from '../../../services/worker/jobs';
import type { Processor } from '../../../services/worker/processor';
import { createEngineFixture, submission, waitFor, type EngineFixture } from './fixture';

describe('job timeouts', () => {
  let fx: EngineFixture;
  beforeAll(async () => {
    fx = await createEngineFixture();
    const realSleep = findProcessor('sleep') as Processor;
    // The real sleep processor, declared with a one-second timeout.
    await fx.startRunner({}, { processors: (type) => (type === 'sleep' ? { ...realSleep, definition: { ...sleep, timeoutMs: 1_000 } } : findProcessor(type)) });
  });
  afterAll(async () => {
    await fx?.close();
  });

  it('fails an attempt that runs past its type\'s timeout, naming the timeout', async () => {
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 60_000 }, maxAttempts: 1 }));
    const done = await waitFor('the attempt to time out', async () => {
      const view = await fx.core.jobs.get(fx.ownerId, job.id);
      return view.status === 'failed' && view;
    }, 15_000);
    expect(done.error).toBe('the job ran past its type\'s timeout of 1000 ms and was stopped');
  });

  it('retries a timed-out attempt while attempts remain', async () => {
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 60_000 }, maxAttempts: 2 }));
    const retried = await waitFor('a second attempt', async () => {
      const view = await fx.core.jobs.get(fx.ownerId, job.id);
      return view.attempts >= 2 && view;
    }, 15_000);
    expect(retried.attempts).toBeGreaterThanOrEqual(2);
  });

  it('declares a timeout for every type; the longest is what a worker drains for', () => {
    for (const definition of Object.values(JOB_TYPES)) expect(definition.timeoutMs).toBeGreaterThanOrEqual(1_000);
    expect(LONGEST_JOB_TIMEOUT_MS).toBe(Math.max(...Object.values(JOB_TYPES).map((d) => d.timeoutMs)));
    // sleep accepts up to ten minutes: its timeout must let the longest one finish.
    expect(sleep.timeoutMs).toBeGreaterThan(600_000);
  });
});
