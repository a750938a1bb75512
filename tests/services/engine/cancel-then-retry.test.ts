/**
 * A cancel reaches the worker running the job by job id, after the cancel committed; the
 * owner may retry the job before it gets there. The retry finds the stopping run still
 * holding the job's queue entry (BullMQ keeps one per id), so the run that obeys the late
 * cancel must not leave the retried job behind: it runs again, once, to its end.
 *
 * Each test commits the cancel and sends its signal as two steps, with the retry between
 * them: the order a slow signal (a Redis round trip, a busy worker) produces.
 */
import { sleep } from '../../../services/contract';
import { cancelJob } from '../../../services/core/db/jobs';
import { cancelChannel } from '../../../services/core/queue/keys';
import { findProcessor } from '../../../services/worker/jobs';
import { defineProcessor, type Processor } from '../../../services/worker/processor';
import { createEngineFixture, statusOf, submission, waitFor, type EngineFixture } from './fixture';

/** A sleep job whose first run waits until it is stopped and whose later runs return at once; `entered` resolves when the first run begins. */
function firstRunWaitsToBeStopped(): { processor: Processor; entered: Promise<void> } {
  let runs = 0;
  let enter!: () => void;
  const entered = new Promise<void>((resolve) => (enter = resolve));
  const processor = defineProcessor(sleep, async ({ signal }) => {
    runs += 1;
    if (runs === 1) {
      enter();
      await new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }));
    }
    return { result: { sleptMs: 0 } };
  });
  return { processor: processor as unknown as Processor, entered };
}

describe('job engine: a cancel whose signal arrives after the job was retried', () => {
  let fx: EngineFixture;

  beforeEach(async () => {
    fx = await createEngineFixture();
  });
  afterEach(async () => {
    await fx?.close();
  });

  async function events(jobId: string): Promise<{ to: string; detail: string | null }[]> {
    const rows = await fx.query<{ to_status: string; detail: string | null }>('SELECT to_status, detail FROM job_events WHERE job_id = $1 ORDER BY id', [jobId]);
    return rows.map((row) => ({ to: row.to_status, detail: row.detail }));
  }

  const sendCancelSignal = (jobId: string) => fx.core.redis.client.publish(cancelChannel(fx.env.QUEUE_PREFIX), jobId);

  it('a run stopped after it started the retried job releases it, and the job runs again to success', async () => {
    const gate = firstRunWaitsToBeStopped();
    // The run's start waits a second for company before it is written: the cancel and the retry land first.
    await fx.startRunner({ transitions: { windowMs: 1_000 } }, { processors: (type) => (type === 'sleep' ? gate.processor : findProcessor(type)) });
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 60_000 }, maxAttempts: 1 }));
    await gate.entered;

    expect(await cancelJob(fx.core.generalPool, job.id, fx.ownerId)).toMatchObject({ previous: 'queued' });
    await fx.core.jobs.retry(fx.ownerId, job.id);
    // The run's start, read before the cancel, moves the retried job.
    await waitFor('the run to start the retried job', async () => (await statusOf(fx, job.id)) === 'running');
    await sendCancelSignal(job.id);

    await waitFor('the retried job to succeed', async () => (await statusOf(fx, job.id)) === 'succeeded');
    expect(await events(job.id)).toEqual([
      { to: 'queued', detail: null },
      { to: 'cancelled', detail: 'cancelled by request' },
      { to: 'queued', detail: 'retried by request' },
      { to: 'running', detail: null },
      { to: 'queued', detail: 'released: its run obeyed a cancel that came before the retry it had started' },
      { to: 'running', detail: null },
      { to: 'succeeded', detail: null },
    ]);
    expect(await fx.core.jobs.get(fx.ownerId, job.id)).toMatchObject({ attempts: 1, error: null });
  });

  it('a run stopped while its entry carries the retried job hands the job on, and it runs again to success', async () => {
    const gate = firstRunWaitsToBeStopped();
    await fx.startRunner({}, { processors: (type) => (type === 'sleep' ? gate.processor : findProcessor(type)) });
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 60_000 }, maxAttempts: 1 }));
    await gate.entered;
    await waitFor('the job to run', async () => (await statusOf(fx, job.id)) === 'running');

    expect(await cancelJob(fx.core.generalPool, job.id, fx.ownerId)).toMatchObject({ previous: 'running' });
    await fx.core.jobs.retry(fx.ownerId, job.id);
    await sendCancelSignal(job.id);

    await waitFor('the retried job to succeed', async () => (await statusOf(fx, job.id)) === 'succeeded');
    expect((await events(job.id)).map((event) => event.to)).toEqual(['queued', 'running', 'cancelled', 'queued', 'running', 'succeeded']);
  });
});
