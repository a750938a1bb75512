import { randomUUID } from 'node:crypto';
import { Queue, Worker, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { RETENTION } from '../services/contract';

export interface CeilingResult {
  jobs: number;
  concurrency: number;
  addSeconds: number;
  drainSeconds: number;
  /** Jobs per second a no-op worker completes: the reference the platform is measured against. */
  jobsPerSecond: number;
}

interface Harness {
  queue: Queue;
  /** Resolves when a no-op worker has completed `jobs` jobs; the worker is closed by then. */
  drain(jobs: number, concurrency: number): Promise<void>;
  close(): Promise<void>;
}

function harness(redisUrl: string): Harness {
  const prefix = `{bench-${randomUUID().slice(0, 8)}}`;
  const queueName = 'ceiling';
  const producerConnection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const workerConnection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(queueName, { connection: producerConnection, prefix });
  return {
    queue,
    drain: (jobs, concurrency) =>
      new Promise<void>((resolve) => {
        let completed = 0;
        const worker = new Worker(queueName, async () => undefined, { connection: workerConnection, prefix, concurrency });
        worker.on('completed', () => {
          completed += 1;
          if (completed === jobs) void worker.close().then(() => resolve());
        });
      }),
    async close() {
      await queue.obliterate({ force: true });
      await queue.close();
      await Promise.all([producerConnection.quit(), workerConnection.quit()]);
    },
  };
}

function noopJobs(offset: number, count: number, opts: JobsOptions): { name: string; data: { n: number }; opts: JobsOptions }[] {
  return Array.from({ length: count }, (_, index) => ({ name: 'noop', data: { n: offset + index }, opts: { ...opts, jobId: `j-${offset + index}` } }));
}

/**
 * The raw BullMQ reference: bulk-add N jobs, then let one no-op worker drain them.
 * No HTTP, no PostgreSQL: whatever the platform adds on top is measured against this.
 */
export async function measureBullmqCeiling(options: { redisUrl: string; jobs: number; concurrency: number }): Promise<CeilingResult> {
  const { queue, drain, close } = harness(options.redisUrl);
  const chunk = 1_000;
  const addStarted = performance.now();
  for (let offset = 0; offset < options.jobs; offset += chunk) {
    await queue.addBulk(noopJobs(offset, Math.min(chunk, options.jobs - offset), { removeOnComplete: { count: 1_000 } }));
  }
  const addSeconds = (performance.now() - addStarted) / 1_000;
  const drainStarted = performance.now();
  await drain(options.jobs, options.concurrency);
  const drainSeconds = (performance.now() - drainStarted) / 1_000;
  await close();
  return { jobs: options.jobs, concurrency: options.concurrency, addSeconds, drainSeconds, jobsPerSecond: options.jobs / drainSeconds };
}

/**
 * BullMQ used the way the platform uses it: jobs arrive in small bulks (one per submit
 * batch) with the platform's retention options while a worker drains, so the queue is
 * mostly empty and each job is fetched on its own. Its CPU per job is the BullMQ floor
 * under the platform's worker and Redis figures (the prefilled ceiling is cheaper).
 */
export async function measureBullmqFedInBatches(options: { redisUrl: string; jobs: number; batch: number; concurrency: number }): Promise<{ seconds: number }> {
  const { queue, drain, close } = harness(options.redisUrl);
  const started = performance.now();
  const drained = drain(options.jobs, options.concurrency);
  const retention: JobsOptions = { attempts: 1, removeOnComplete: RETENTION.completed, removeOnFail: { ...RETENTION.failed } };
  for (let offset = 0; offset < options.jobs; offset += options.batch) {
    await queue.addBulk(noopJobs(offset, Math.min(options.batch, options.jobs - offset), retention));
  }
  await drained;
  const seconds = (performance.now() - started) / 1_000;
  await close();
  return { seconds };
}
