import { setTimeout as delay } from 'node:timers/promises';
import { echo, sleep } from '../../../services/contract';
import { ConflictError } from '../../../services/core/errors';
import { bullJobKey } from '../../../services/core/queue/keys';
import { findProcessor } from '../../../services/worker/jobs';
import { defineProcessor, PermanentJobError, type Processor } from '../../../services/worker/processor';
import { createEngineFixture, submission, statusOf, waitFor, type EngineFixture } from './fixture';

function waitForStatus(fx: EngineFixture, jobId: string, status: string, timeoutMs?: number): Promise<true> {
  return waitFor(`job ${jobId} to be ${status}`, async () => (await statusOf(fx, jobId)) === status || undefined, timeoutMs);
}

async function eventsOf(fx: EngineFixture, jobId: string): Promise<{ from: string | null; to: string; detail: string | null }[]> {
  return (await fx.core.jobs.events(fx.ownerId, jobId)).map(({ from, to, detail }) => ({ from, to, detail }));
}

/** Processor lookup with echo replaced. */
function withEcho(processor: Processor): (type: string) => Processor | undefined {
  return (type) => (type === 'echo' ? processor : findProcessor(type));
}

describe('job engine: lifecycle', () => {
  let fx: EngineFixture;

  beforeEach(async () => {
    fx = await createEngineFixture();
  });
  afterEach(async () => {
    await fx?.close();
  });

  it('retries with backoff, dead-letters after the last attempt, and replays', async () => {
    let failing = true;
    let runs = 0;
    const flaky = defineProcessor(echo, async ({ input }) => {
      runs += 1;
      if (failing) throw new Error(`boom ${runs}`);
      return { result: { payload: input.payload } };
    });
    await fx.startRunner({}, { processors: withEcho(flaky as unknown as Processor) });

    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: 'x' }, maxAttempts: 3 }));
    await waitForStatus(fx, job.id, 'failed');
    const failed = await fx.core.jobs.get(fx.ownerId, job.id);
    expect(failed).toMatchObject({ attempts: 3, error: 'boom 3' });
    expect(runs).toBe(3);
    const trail = await eventsOf(fx, job.id);
    expect(trail.map((event) => event.to)).toEqual(['queued', 'running', 'queued', 'running', 'queued', 'running', 'failed']);
    expect(trail[2]?.detail).toMatch(/^attempt 1 failed: boom 1; retrying in \d+ ms$/);

    const deadLetters = await fx.core.admin.deadLetters({ limit: 10 });
    expect(deadLetters.items.map((item) => item.id)).toEqual([job.id]);
    const stats = await fx.core.admin.queueStats();
    expect(stats.statuses.failed).toBe(1);
    expect(stats.counts.failed).toBe(1);

    failing = false;
    const { job: replayed } = await fx.core.admin.replay(job.id);
    expect(replayed).toMatchObject({ status: 'queued', attempts: 0, error: null });
    await waitForStatus(fx, job.id, 'succeeded');
    expect(await fx.core.jobs.get(fx.ownerId, job.id)).toMatchObject({ attempts: 1, result: { payload: 'x' } });
    expect((await fx.core.admin.deadLetters({ limit: 10 })).items).toHaveLength(0);
    await expect(fx.core.admin.replay(job.id)).rejects.toBeInstanceOf(ConflictError);
  });

  it('fails at once on a PermanentJobError, and a client retry re-queues it', async () => {
    let permanent = true;
    const picky = defineProcessor(echo, async ({ input }) => {
      if (permanent) throw new PermanentJobError('not my kind of payload');
      return { result: { payload: input.payload } };
    });
    await fx.startRunner({}, { processors: withEcho(picky as unknown as Processor) });
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: 1 } }));
    await waitForStatus(fx, job.id, 'failed');
    expect(await fx.core.jobs.get(fx.ownerId, job.id)).toMatchObject({ attempts: 1, error: 'not my kind of payload' });

    permanent = false;
    await fx.core.jobs.retry(fx.ownerId, job.id);
    await waitForStatus(fx, job.id, 'succeeded');
    await expect(fx.core.jobs.retry(fx.ownerId, job.id)).rejects.toBeInstanceOf(ConflictError);
  });

  it('cancels a queued job: the row is cancelled, the BullMQ job removed, and it never runs', async () => {
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 10 } }));
    await waitFor('the job to reach Redis', async () => (await fx.core.relay.queue.getJob(job.id)) !== undefined);
    const cancelled = await fx.core.jobs.cancel(fx.ownerId, job.id);
    expect(cancelled.status).toBe('cancelled');
    expect(await fx.core.relay.queue.getJob(job.id)).toBeUndefined();
    await expect(fx.core.jobs.cancel(fx.ownerId, job.id)).rejects.toBeInstanceOf(ConflictError);

    // A runner started afterwards finds nothing to run, and the sweep does not resurrect it.
    await fx.startRunner();
    await fx.core.relay.sweep();
    await delay(300);
    expect(await statusOf(fx, job.id)).toBe('cancelled');
    expect((await eventsOf(fx, job.id)).map((event) => event.to)).toEqual(['queued', 'cancelled']);
  });

  it('cancels a running job: the processor sees its signal abort and the job stays cancelled', async () => {
    let aborted = false;
    const sleeper = defineProcessor(sleep, async ({ input, signal }) => {
      await delay(input.ms, undefined, { signal }).catch((error: unknown) => {
        aborted = signal.aborted;
        throw error;
      });
      return { result: { sleptMs: input.ms } };
    });
    const runner = await fx.startRunner({}, { processors: (type) => (type === 'sleep' ? (sleeper as unknown as Processor) : findProcessor(type)) });
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 30_000 } }));
    await waitForStatus(fx, job.id, 'running');
    await fx.core.jobs.cancel(fx.ownerId, job.id);
    await waitFor('the processor to abort', async () => aborted && runner.inFlight === 0);
    expect(await statusOf(fx, job.id)).toBe('cancelled');
    expect((await eventsOf(fx, job.id)).map((event) => event.to)).toEqual(['queued', 'running', 'cancelled']);
  });

  it('completes a job delivered twice exactly once (conditional terminal transition)', async () => {
    let runs = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = defineProcessor(echo, async ({ input }) => {
      runs += 1;
      await gate;
      return { result: { payload: input.payload } };
    });
    const processors = withEcho(slow as unknown as Processor);
    await fx.startRunner({}, { processors });
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: 'once' } }));
    await waitFor('the first delivery', async () => runs === 1);

    // Make BullMQ believe the first worker died: drop its lock, so the stalled check moves the
    // job back to wait and a second runner takes it while the first still runs it.
    const redis = fx.core.redis.client;
    await redis.del(`${bullJobKey(fx.env.QUEUE_PREFIX, job.id)}:lock`);
    await fx.startRunner({}, { processors });
    await waitFor('the second delivery', async () => runs === 2, 15_000);

    release();
    await waitForStatus(fx, job.id, 'succeeded');
    await delay(500);
    const trail = await eventsOf(fx, job.id);
    expect(trail.filter((event) => event.to === 'succeeded')).toHaveLength(1);
    expect(trail.map((event) => event.to)).toEqual(['queued', 'running', 'running', 'succeeded']);
    expect(await fx.core.jobs.get(fx.ownerId, job.id)).toMatchObject({ status: 'succeeded', attempts: 1, result: { payload: 'once' } });
  });
});
