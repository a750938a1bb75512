/**
 * The relay's sweep asks Redis where each queued or running job stands with one script
 * call per 250 jobs. These run it against a private redis-server and real BullMQ entries:
 * every state comes back for the right job, in order across calls, and the lookup survives
 * Redis losing its script cache or restarting empty.
 */
import { randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { bullJobKey } from '../../../services/core/queue/keys';
import { readJobStates } from '../../../services/core/queue/job-states';
import { startRedis, type RedisServer } from '../../harness/redis';

const PREFIX = '{states-test}';
const QUEUE = 'jobs';

describe('readJobStates: where each job stands in Redis', () => {
  let server: RedisServer;
  let connection: Redis;

  beforeAll(async () => {
    server = await startRedis();
    connection = new Redis(server.url, { maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    connection.disconnect();
    await server.destroy();
  });
  beforeEach(async () => {
    await connection.flushall();
  });

  it('tells a waiting job, a completed one, a crash-looped one and an unknown id apart', async () => {
    const queue = new Queue(QUEUE, { connection, prefix: PREFIX });
    const [waiting, completed, crashLooped, unknown] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await queue.add('echo', {}, { jobId: completed, removeOnComplete: false });
    const workerConnection = connection.duplicate();
    const worker = new Worker(QUEUE, async () => 'done', { connection: workerConnection, prefix: PREFIX });
    await new Promise<void>((resolve) => worker.on('completed', () => resolve()));
    await worker.close();
    workerConnection.disconnect();
    await queue.add('echo', {}, { jobId: waiting });
    await queue.add('echo', {}, { jobId: crashLooped });
    // What BullMQ writes when a job stalled more than maxStalledCount times.
    await connection.hset(bullJobKey(PREFIX, crashLooped), 'defa', 'job stalled more than allowable limit');

    const states = await readJobStates(connection, PREFIX, [waiting, completed, crashLooped, unknown]);

    expect(Object.fromEntries(states)).toEqual({ [waiting]: 'held', [completed]: 'finished', [crashLooped]: 'crash-looped', [unknown]: 'missing' });
    await queue.close();
  });

  it('keeps each answer with its job across script calls (1,001 jobs, every third one held)', async () => {
    const ids = Array.from({ length: 1_001 }, () => randomUUID());
    const pipeline = connection.pipeline();
    ids.forEach((id, index) => {
      if (index % 3 === 0) pipeline.hset(bullJobKey(PREFIX, id), 'timestamp', String(Date.now()));
    });
    await pipeline.exec();

    const states = await readJobStates(connection, PREFIX, ids);

    expect(states.size).toBe(ids.length);
    ids.forEach((id, index) => expect([index, states.get(id)]).toEqual([index, index % 3 === 0 ? 'held' : 'missing']));
  });

  it('answers for no jobs without asking Redis', async () => {
    const offline = new Redis(server.url, { lazyConnect: true, enableOfflineQueue: false });
    await expect(readJobStates(offline, PREFIX, [])).resolves.toEqual(new Map());
    offline.disconnect();
  });

  it('still answers after Redis dropped its scripts (SCRIPT FLUSH) and after it restarted empty', async () => {
    const id = randomUUID();
    await connection.hset(bullJobKey(PREFIX, id), 'timestamp', '1');
    expect((await readJobStates(connection, PREFIX, [id])).get(id)).toBe('held');

    await connection.script('FLUSH');
    expect((await readJobStates(connection, PREFIX, [id])).get(id)).toBe('held');

    await server.restartEmpty();
    await connection.ping();
    expect((await readJobStates(connection, PREFIX, [id])).get(id)).toBe('missing');
  });

  it('fails with the reason when Redis refuses the script', async () => {
    const id = randomUUID();
    // A job key holding a string instead of BullMQ's hash: HMGET fails inside the script.
    await connection.set(bullJobKey(PREFIX, id), 'not a hash');
    await expect(readJobStates(connection, PREFIX, [id])).rejects.toThrow(/WRONGTYPE/);
  });
});
