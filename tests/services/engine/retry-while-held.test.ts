/**
 * A job retried the moment it failed: its failure is committed, but the delivery that
 * failed it still holds its queue entry for the few milliseconds until the worker moves the
 * entry on (failed in BullMQ), and BullMQ ignores an add while the id exists. The retry must
 * still hand the job over: an owner reacting to the 'failed' event does just this.
 */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { QUEUES } from '../../../services/contract';
import { TransitionWriter } from '../../../services/core/jobs/transitions';
import { createEngineFixture, handedOver, statusOf, submission, waitFor, type EngineFixture } from './fixture';

describe('job engine: a retry while the failed delivery still holds the job\'s entry', () => {
  let fx: EngineFixture;
  let holder: Worker | undefined;
  let holderConnection: Redis | undefined;

  beforeEach(async () => {
    fx = await createEngineFixture();
  });
  afterEach(async () => {
    await holder?.close(true);
    holderConnection?.disconnect();
    await fx?.close();
  });

  it('the retry waits for the delivery to let go of the entry, and the job runs again', async () => {
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 0 }, maxAttempts: 1 }));
    await handedOver(fx, job.id);

    // The delivery: a worker takes the job's entry (BullMQ's manual processing) and holds it.
    holderConnection = new Redis(fx.env.REDIS_URL, { maxRetriesPerRequest: null });
    holder = new Worker(QUEUES.jobs, null, { connection: holderConnection, prefix: fx.env.QUEUE_PREFIX });
    const token = 'the failed delivery';
    const entry = await holder.getNextJob(token);
    expect(entry?.id).toBe(job.id);
    let lettingGo: Promise<unknown> | undefined;
    const letGo = () => (lettingGo ??= (entry as NonNullable<typeof entry>).moveToCompleted('let go', token, false));

    // Its run fails for good, as the worker writes it; the entry is still held.
    const writer = new TransitionWriter({ batchPool: fx.core.batchPool, generalPool: fx.core.generalPool, log: fx.log });
    await writer.record({ event: 'start', jobId: job.id, attempt: 1, at: Date.now(), from: 'queued' });
    expect(await writer.record({ event: 'fail', jobId: job.id, attempt: 1, at: Date.now(), error: 'failed for good' })).toBe(true);
    await writer.close();

    // The delivery lets go of the entry once the retry is looking at it.
    const getJobState = fx.core.relay.queue.getJobState.bind(fx.core.relay.queue);
    jest.spyOn(fx.core.relay.queue, 'getJobState').mockImplementation(async (id) => {
      const state = await getJobState(id);
      letGo();
      return state;
    });
    await fx.core.jobs.retry(fx.ownerId, job.id);
    await letGo();
    await holder.close();

    await fx.startRunner();
    await waitFor('the retried job to succeed', async () => (await statusOf(fx, job.id)) === 'succeeded');
  });
});
