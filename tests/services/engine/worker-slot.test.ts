import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bullJobKey, workerHeartbeatKey, workerSlotsKey } from '../../../services/core/queue/keys';
import { WorkerSlots } from '../../../services/core/queue/worker-slots';
import { createEngineFixture, killWorkerChildren, spawnWorker, statusOf, submission, waitFor, type EngineFixture, type WorkerChild } from './fixture';

const WORKER_CHILD = 'tests/services/engine/worker-child.ts';
/** Longer than any wait below: a job that finishes after its worker was killed was set free by its slot, not by a lapsed lock. */
const LOCK_OUTLIVING_THE_TEST = { TEST_LOCK_DURATION_MS: String(10 * 60_000) };

describe('job engine: worker slots', () => {
  let fx: EngineFixture;

  beforeEach(async () => {
    fx = await createEngineFixture();
  });
  afterEach(async () => {
    await killWorkerChildren();
    await fx?.close();
  });

  const eventsOf = async (jobId: string) =>
    (await fx.query<{ to_status: string; detail: string | null }>('SELECT to_status, detail FROM job_events WHERE job_id = $1 ORDER BY id', [jobId])).map((event) => [event.to_status, event.detail]);

  /**
   * A one-second sleep that `doomed` (a worker in pod-1) is running when it is killed, and
   * the successor started in its slot, once the job succeeded there. With the lock outliving
   * the test, only the successor's release of the slot's jobs lets it succeed in time.
   */
  async function killedWhileRunning(doomed: WorkerChild): Promise<{ jobId: string; successor: WorkerChild }> {
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 1_000 } }));
    await waitFor('the job to run', async () => (await statusOf(fx, job.id)) === 'running');
    doomed.kill('SIGKILL');
    await doomed.exited;
    const successor = await spawnWorker(fx, WORKER_CHILD, { ...LOCK_OUTLIVING_THE_TEST, WORKER_SLOT: 'pod-1' });
    await waitFor('the job to succeed on the successor', async () => (await statusOf(fx, job.id)) === 'succeeded', 30_000);
    expect(successor.output()).toMatch(/released 1 queue entry the previous worker in this slot left running/);
    return { jobId: job.id, successor };
  }

  it('a worker started in the slot of one that was killed runs that worker\'s jobs again at once, without an attempt, instead of after their locks lapse', async () => {
    const doomed = await spawnWorker(fx, WORKER_CHILD, { ...LOCK_OUTLIVING_THE_TEST, WORKER_SLOT: 'pod-1' });
    const { jobId, successor } = await killedWhileRunning(doomed);
    expect(await fx.core.jobs.get(fx.ownerId, jobId)).toMatchObject({ attempts: 1, result: { sleptMs: 1_000 } });
    expect(await eventsOf(jobId)).toEqual([
      ['queued', null],
      ['running', null],
      ['running', 'redelivered after an interrupted run'],
      ['succeeded', null],
    ]);
    // The killed worker's heartbeat went with its slot: `platform doctor` counts one live worker, not two.
    const heartbeats = workerHeartbeatKey(fx.env.QUEUE_PREFIX);
    await waitFor('one heartbeat, the successor\'s', async () => (await fx.core.redis.client.hlen(heartbeats)) === 1);
    successor.kill('SIGTERM');
    expect(await successor.exited).toEqual({ code: 0, signal: null });
    // A clean stop leaves nothing behind to release.
    expect(await fx.core.redis.client.hget(workerSlotsKey(fx.env.QUEUE_PREFIX), 'pod-1')).toBeNull();
  }, 90_000);

  it('a worker whose slot record Redis lost (restarted empty, failed over) records it again, so a crash still sets its jobs free at once', async () => {
    const doomed = await spawnWorker(fx, WORKER_CHILD, { ...LOCK_OUTLIVING_THE_TEST, WORKER_SLOT: 'pod-1' });
    const slots = workerSlotsKey(fx.env.QUEUE_PREFIX);
    await waitFor('the worker to hold its slot', async () => (await fx.core.redis.client.hget(slots, 'pod-1')) !== null);
    const record = await fx.core.redis.client.hget(slots, 'pod-1');
    await fx.core.redis.client.hdel(slots, 'pod-1');
    await waitFor('the worker to record its slot again', async () => (await fx.core.redis.client.hget(slots, 'pod-1')) === record, 20_000);

    const { successor } = await killedWhileRunning(doomed);
    successor.kill('SIGTERM');
    expect(await successor.exited).toEqual({ code: 0, signal: null });
  }, 90_000);

  // Found by a runbook drill: a worker stopped past its locks and then killed by the liveness check left its jobs for BullMQ's second stalled check.
  it('a worker started in the slot of one that hung past its locks before it was killed runs that worker\'s jobs again at once, instead of after stalled checks', async () => {
    // Stalled checks too far apart to set the job free within the test: only the claim can.
    const rareChecks = { TEST_STALLED_INTERVAL_MS: String(10 * 60_000), WORKER_SLOT: 'pod-1' };
    const hung = await spawnWorker(fx, WORKER_CHILD, rareChecks);
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 1_000 } }));
    await waitFor('the job to run', async () => (await statusOf(fx, job.id)) === 'running');
    hung.kill('SIGSTOP');
    const lockKey = `${bullJobKey(fx.env.QUEUE_PREFIX, job.id)}:lock`;
    await waitFor('its lock to lapse while the worker hangs', async () => (await fx.core.redis.client.exists(lockKey)) === 0, 20_000);
    hung.kill('SIGKILL');
    await hung.exited;

    const successor = await spawnWorker(fx, WORKER_CHILD, rareChecks);
    await waitFor('the job to succeed on the successor', async () => (await statusOf(fx, job.id)) === 'succeeded', 30_000);
    expect(successor.output()).toMatch(/released 1 queue entry the previous worker in this slot left running/);
    expect(await fx.core.jobs.get(fx.ownerId, job.id)).toMatchObject({ attempts: 1 });
  }, 90_000);

  it('the jobs a killed worker was running run side by side again, not one at a time', async () => {
    const doomed = await spawnWorker(fx, WORKER_CHILD, { ...LOCK_OUTLIVING_THE_TEST, WORKER_SLOT: 'pod-1' });
    const jobs = await Promise.all(Array.from({ length: 4 }, () => fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 3_000 } }))));
    const ids = jobs.map(({ job }) => job.id);
    await waitFor('the jobs to run', async () => (await Promise.all(ids.map((id) => statusOf(fx, id)))).every((status) => status === 'running'));
    doomed.kill('SIGKILL');
    await doomed.exited;

    const successor = await spawnWorker(fx, WORKER_CHILD, { ...LOCK_OUTLIVING_THE_TEST, WORKER_SLOT: 'pod-1' });
    await waitFor('the jobs to succeed', async () => (await Promise.all(ids.map((id) => statusOf(fx, id)))).every((status) => status === 'succeeded'), 60_000);
    const [span] = await fx.query<{ last_rerun: Date; first_success: Date }>(
      `SELECT max(at) FILTER (WHERE detail = 'redelivered after an interrupted run') AS last_rerun, min(at) FILTER (WHERE to_status = 'succeeded') AS first_success
         FROM job_events WHERE job_id = ANY($1::uuid[])`,
      [ids],
    );
    // Every second run began before any ended: they overlapped.
    expect(span!.last_rerun.getTime()).toBeLessThan(span!.first_success.getTime());
    for (const id of ids) expect(await fx.core.jobs.get(fx.ownerId, id)).toMatchObject({ status: 'succeeded', attempts: 1 });
    successor.kill('SIGTERM');
    await successor.exited;
  }, 120_000);

  it('a worker in another slot leaves the jobs of a live worker alone', async () => {
    const first = await spawnWorker(fx, WORKER_CHILD, { ...LOCK_OUTLIVING_THE_TEST, WORKER_SLOT: 'pod-1' });
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 2_500 } }));
    await waitFor('the job to run', async () => (await statusOf(fx, job.id)) === 'running');
    const second = await spawnWorker(fx, WORKER_CHILD, { ...LOCK_OUTLIVING_THE_TEST, WORKER_SLOT: 'pod-2' });
    await waitFor('the job to succeed', async () => (await statusOf(fx, job.id)) === 'succeeded', 30_000);
    expect(await eventsOf(job.id)).toEqual([
      ['queued', null],
      ['running', null],
      ['succeeded', null],
    ]);
    expect(second.output()).not.toMatch(/released/);
    for (const worker of [first, second]) worker.kill('SIGTERM');
    await Promise.all([first.exited, second.exited]);
  }, 90_000);

  it('a second live worker given the slot of a running one releases nothing, says so, and runs without a slot', async () => {
    const first = await spawnWorker(fx, WORKER_CHILD, { ...LOCK_OUTLIVING_THE_TEST, WORKER_SLOT: 'shared' });
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 2_500 } }));
    await waitFor('the job to run', async () => (await statusOf(fx, job.id)) === 'running');
    const firstHolder = await fx.core.redis.client.hget(workerSlotsKey(fx.env.QUEUE_PREFIX), 'shared');

    const second = await spawnWorker(fx, WORKER_CHILD, { ...LOCK_OUTLIVING_THE_TEST, WORKER_SLOT: 'shared' });
    await waitFor('the job to succeed', async () => (await statusOf(fx, job.id)) === 'succeeded', 30_000);
    // Run once: the second start did not hand the first worker's running job out again.
    expect(await eventsOf(job.id)).toEqual([
      ['queued', null],
      ['running', null],
      ['succeeded', null],
    ]);
    expect(second.output()).toMatch(/another worker process holds this worker slot and is still connected to Redis/);
    expect(second.output()).not.toMatch(/released/);
    expect(await fx.core.redis.client.hget(workerSlotsKey(fx.env.QUEUE_PREFIX), 'shared')).toBe(firstHolder);

    // The second worker takes jobs like any other.
    const later = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 0 } }));
    await waitFor('a later job to succeed', async () => (await statusOf(fx, later.job.id)) === 'succeeded', 30_000);
    expect(first.output()).not.toMatch(/another worker process claimed/);
    second.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
    // The second never held the slot, so its stop left the first one's record in place.
    expect(await fx.core.redis.client.hget(workerSlotsKey(fx.env.QUEUE_PREFIX), 'shared')).toBe(firstHolder);
    first.kill('SIGTERM');
    await first.exited;
  }, 90_000);

  it('a running worker says so, loudly, when a claim that could not see it took its slot', async () => {
    const first = await spawnWorker(fx, WORKER_CHILD, { WORKER_SLOT: 'shared' });
    await waitFor('the first worker to hold the slot', async () => (await fx.core.redis.client.hget(workerSlotsKey(fx.env.QUEUE_PREFIX), 'shared')) !== null);
    // Where Redis refuses CLIENT LIST a claim takes the slot on the slot's promise alone, as this record does.
    await fx.core.redis.client.hset(workerSlotsKey(fx.env.QUEUE_PREFIX), 'shared', JSON.stringify({ workerId: 'w-unseen', lockOwner: 'bull-unseen', claimedAt: Date.now() }));
    await waitFor('the first worker to notice', async () => /another worker process claimed this worker slot while this one runs/.test(first.output()), 20_000);
    first.kill('SIGTERM');
    await first.exited;
  }, 90_000);

  it('forgets a slot only once its holder is long gone, and a stop leaves only a slot it still holds', async () => {
    const redis = fx.core.redis.client;
    const slots = new WorkerSlots(redis, fx.env.QUEUE_PREFIX);
    const now = Date.now();
    const holder = (workerId: string, claimedAt: number) => ({ workerId, lockOwner: `bull-${workerId}`, claimedAt });
    await slots.claim('deleted-pod', holder('w-gone', now - 3_600_000));
    await slots.claim('live-pod', holder('w-live', now - 3_600_000));
    await slots.claim('new-pod', holder('w-new', now));
    await redis.hset(workerHeartbeatKey(fx.env.QUEUE_PREFIX), 'w-live', now);

    expect(await slots.forgetAbandoned(now - 600_000)).toBe(1);
    expect(Object.keys(await redis.hgetall(workerSlotsKey(fx.env.QUEUE_PREFIX))).sort()).toEqual(['live-pod', 'new-pod']);

    // A process that lost its slot to another does not take it from that one as it stops.
    await redis.hset(workerHeartbeatKey(fx.env.QUEUE_PREFIX), 'w-new', now);
    const successor = holder('w-successor', now);
    const claim = await slots.claim('new-pod', successor);
    expect(claim).toMatchObject({ predecessor: holder('w-new', now), released: 0, unreadablePredecessor: false });
    // The claim forgets the predecessor's heartbeat, and only its.
    expect(Object.keys(await redis.hgetall(workerHeartbeatKey(fx.env.QUEUE_PREFIX)))).toEqual(['w-live']);
    await slots.leave('new-pod', holder('w-new', now));
    expect(await slots.holder('new-pod')).toEqual(successor);
    await slots.leave('new-pod', successor);
    expect(await slots.holder('new-pod')).toBeUndefined();
  });

  it('a job that kills its worker, restarted in its slot as an orchestrator would, is still dead-lettered after three runs, without waiting out a lock', async () => {
    const scratch = await mkdtemp(path.join(os.tmpdir(), 'pk-slot-crash-loop-'));
    const deliveryLog = path.join(scratch, 'deliveries');
    try {
      const poison = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: 'poison' } }));
      for (let start = 0; start < 8 && (await statusOf(fx, poison.job.id)) !== 'failed'; start += 1) {
        const worker = await spawnWorker(fx, WORKER_CHILD, { ...LOCK_OUTLIVING_THE_TEST, WORKER_SLOT: 'pod-1', TEST_DELIVERY_LOG: deliveryLog }).catch(() => undefined);
        if (!worker) continue;
        await Promise.race([worker.exited, waitFor('the poison job to be dead-lettered', async () => (await statusOf(fx, poison.job.id)) === 'failed', 20_000).catch(() => undefined)]);
        if ((await statusOf(fx, poison.job.id)) === 'failed') {
          worker.kill('SIGTERM');
          await worker.exited;
        }
      }
      const dead = await fx.core.jobs.get(fx.ownerId, poison.job.id);
      expect(dead.status).toBe('failed');
      expect(dead.error).toMatch(/its run ended with its worker 3 times in a row/);
      expect(readFileSync(deliveryLog, 'utf8').trim().split('\n')).toHaveLength(3);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }, 180_000);
});
