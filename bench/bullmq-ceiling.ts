import { randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';

export interface CeilingResult {
  jobs: number;
  concurrency: number;
  addSeconds: number;
  drainSeconds: number;
  /** Jobs per second a no-op worker completes: the reference the platform is measured against. */
  jobsPerSecond: number;
}

/**
 * The raw BullMQ reference: bulk-add N jobs, then let one no-op worker drain them.
 * No HTTP, no PostgreSQL: whatever the platform adds on top is measured against this.
 */
export async function measureBullmqCeiling(options: { redisUrl: string; jobs: number; concurrency: number }): Promise<CeilingResult> {
  const prefix = `{bench-${randomUUID().slice(0, 8)}}`;
  const queueName = 'ceiling';
  const producerConnection = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(queueName, { connection: producerConnection, prefix });
  const chunk = 1_000;
  const addStarted = performance.now();
  for (let offset = 0; offset < options.jobs; offset += chunk) {
    const size = Math.min(chunk, options.jobs - offset);
    await queue.addBulk(
      Array.from({ length: size }, (_, index) => ({
        name: 'noop',
        data: { n: offset + index },
        opts: { jobId: `j-${offset + index}`, removeOnComplete: { count: 1_000 } },
      })),
    );
  }
  const addSeconds = (performance.now() - addStarted) / 1_000;

  let completed = 0;
  const drainStarted = performance.now();
  const workerConnection = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
  const drained = new Promise<void>((resolve) => {
    const worker = new Worker(queueName, async () => undefined, {
      connection: workerConnection,
      prefix,
      concurrency: options.concurrency,
    });
    worker.on('completed', () => {
      completed += 1;
      if (completed === options.jobs) void worker.close().then(() => resolve());
    });
  });
  await drained;
  const drainSeconds = (performance.now() - drainStarted) / 1_000;
  await queue.obliterate({ force: true });
  await queue.close();
  await Promise.all([producerConnection.quit(), workerConnection.quit()]);
  return {
    jobs: options.jobs,
    concurrency: options.concurrency,
    addSeconds,
    drainSeconds,
    jobsPerSecond: options.jobs / drainSeconds,
  };
}
