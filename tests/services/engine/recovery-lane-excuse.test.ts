import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createMetrics } from '../../../services/core/metrics';
import { findProcessor } from '../../../services/worker/jobs';
import { startRedis, type RedisServer } from '../../harness/redis';
import { useSharedServices } from '../../harness/shared';
import { countedSleep } from './counted-sleep';
import { createEngineFixture, killWorkerChildren, queueAfterCrashes, spawnWorker, statusOf, submission, superviseWorkers, waitFor, type EngineFixture } from './fixture';
import { FAST_STALL } from './stall';

const WORKER_CHILD = 'tests/services/engine/worker-child.ts';
/** STALL_SETTINGS' maxStalledCount: a job whose runs ended with their worker this often is on its last chance. */
const LAST_CHANCE = 2;
/** Withdrawals of an excuse PostgreSQL refuses before it takes one. */
const REFUSED_WITHDRAWALS = 2;

/**
 * Has PostgreSQL refuse the first `refusals` withdrawals of an excuse. The only write that
 * lowers lock_lapses within one entry is the withdrawal (withdrawLockLapse); a sequence counts
 * the attempts, as a refused one rolls back.
 */
async function refuseFirstWithdrawals(fx: EngineFixture, refusals: number): Promise<void> {
  await fx.query('CREATE SEQUENCE excuse_withdrawals');
  await fx.query(`CREATE FUNCTION refuse_first_withdrawals() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.lock_lapses < OLD.lock_lapses AND NEW.lock_lapses_entry = OLD.lock_lapses_entry AND nextval('excuse_withdrawals') <= ${refusals} THEN
        RAISE EXCEPTION 'the test refuses this withdrawal';
      END IF;
      RETURN NEW;
    END $$`);
  await fx.query('CREATE TRIGGER refuse_first_withdrawals BEFORE UPDATE OF lock_lapses ON jobs FOR EACH ROW EXECUTE FUNCTION refuse_first_withdrawals()');
}

/**
 * A job on its last chance that waits for the jobs beside it has that wait excused on its row
 * in advance, and the excuse taken back before it runs. When PostgreSQL refuses to take it
 * back, the excuse must not stay behind: it would spare the job's next real crash, and a
 * poison job would kill one worker more than its budget allows. When the waiting job's lock
 * is lost instead, the excuse stays: the run that lock ends was not the waiting job's doing.
 */
describe('job engine: the excuse of a job that waited in the recovery lane', () => {
  let fx: EngineFixture;
  let scratch: string;

  beforeEach(async () => {
    fx = await createEngineFixture();
    scratch = await mkdtemp(path.join(os.tmpdir(), 'pk-lane-excuse-'));
  });
  afterEach(async () => {
    await killWorkerChildren();
    await fx?.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it('is taken back once PostgreSQL takes it: a poison job that waited kills one worker, not two, before it is dead-lettered', async () => {
    await refuseFirstWithdrawals(fx, REFUSED_WITHDRAWALS);
    const deliveryLog = path.join(scratch, 'deliveries');
    const env = { TEST_DELIVERY_LOG: deliveryLog };
    const beside = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 3_000 } }));
    const worker = await spawnWorker(fx, WORKER_CHILD, env);
    await waitFor('the job beside it to run', async () => (await statusOf(fx, beside.job.id)) === 'running');
    const poison = await queueAfterCrashes(fx, 'echo', { payload: 'poison' }, LAST_CHANCE);
    const deadLettered = async () => (await statusOf(fx, poison)) === 'failed';
    await Promise.race([worker.exited, waitFor('the poison job to be dead-lettered', deadLettered, 30_000).catch(() => undefined)]);
    await superviseWorkers(fx, WORKER_CHILD, 'the poison job to be dead-lettered', deadLettered, { env });

    expect(await fx.core.jobs.get(fx.ownerId, beside.job.id)).toMatchObject({ status: 'succeeded' });
    expect(await fx.core.jobs.get(fx.ownerId, poison)).toMatchObject({ status: 'failed', error: expect.stringMatching(/ended with its worker 3 times/) });
    expect(readFileSync(deliveryLog, 'utf8').trim().split('\n')).toEqual([poison]);
    expect(await fx.one('SELECT last_value FROM excuse_withdrawals')).toMatchObject({ last_value: REFUSED_WITHDRAWALS + 1 });
  }, 240_000);

  it('stays when the lock of the waiting job lapses because a job beside it held the loop: that run is not charged to the job that waited', async () => {
    const blocker = await queueAfterCrashes(fx, 'echo', { payload: 'block 3000 ms after 1500 ms' }, 0);
    const worker = await spawnWorker(fx, WORKER_CHILD);
    await waitFor('the blocking job to run', async () => (await statusOf(fx, blocker)) === 'running');
    const lastChance = await queueAfterCrashes(fx, 'sleep', { ms: 200 }, LAST_CHANCE);
    const settled = async () => (await Promise.all([blocker, lastChance].map((id) => statusOf(fx, id)))).every((status) => status === 'succeeded' || status === 'failed');
    await Promise.race([worker.exited, waitFor('both jobs to settle', settled, 60_000).catch(() => undefined)]);
    await superviseWorkers(fx, WORKER_CHILD, 'both jobs to settle', settled);

    expect(await fx.core.jobs.get(fx.ownerId, lastChance)).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(worker.output()).toMatch(/lost the lock on a running queue entry \(this worker's event loop stood still/);
  }, 240_000);
});

describe('job engine: the excuse of a job waiting in the recovery lane while Redis lets its lock lapse', () => {
  let redis: RedisServer;
  let fx: EngineFixture;
  const { processor: countsRuns, sleeps } = countedSleep();
  const metrics = createMetrics('lane-excuse-test');
  /** Entries whose lock lapses the runner was told of. */
  const lapsesTold = async () => (await metrics.jobLockLapses.get()).values.reduce((sum, { value }) => sum + value, 0);

  beforeAll(async () => {
    redis = await startRedis();
    const { databaseUrl } = await useSharedServices();
    fx = await createEngineFixture({ servers: { databaseUrl, redisUrl: redis.url, redisPrefix: '{lane-excuse}' } });
    await fx.startRunner({}, { metrics, processors: (type) => (type === 'sleep' ? countsRuns : findProcessor(type)) });
  });
  afterAll(async () => {
    await fx?.close();
    await redis?.destroy();
  });

  it('counts that run excused once, not once more as a lapse: the job is still on its last chance and runs alone', async () => {
    const lockLapses = async (jobId: string) => (await fx.one<{ lock_lapses: number }>('SELECT lock_lapses FROM jobs WHERE id = $1', [jobId])).lock_lapses;
    const beside = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 6_000 }, maxAttempts: 1 }));
    await waitFor('the job beside it to run', async () => sleeps.running === 1 && (await statusOf(fx, beside.job.id)) === 'running');
    // Long enough to overlap the redelivered job beside it, were it let run beside it.
    const lastChance = await queueAfterCrashes(fx, 'sleep', { ms: 3_000 }, LAST_CHANCE);
    await waitFor('its wait to be excused', async () => (await lockLapses(lastChance)) === 1);

    redis.pause();
    try {
      // Redis stays away until both locks lapsed, however their last renewals fell: had the
      // waiting job's lock lapsed after the job beside it had ended, it would have run alone
      // meanwhile, and its lapse would be charged as any other (its excuse taken back by then).
      await waitFor('both locks to lapse', async () => (await lapsesTold()) === 2, FAST_STALL.lockDurationMs + 10_000);
      await waitFor('the lapse of the job beside it to be recorded', async () => (await lockLapses(beside.job.id)) === 1, 10_000);
    } finally {
      redis.resume();
    }

    await waitFor('both jobs to succeed', async () => (await Promise.all([beside.job.id, lastChance].map((id) => statusOf(fx, id)))).every((status) => status === 'succeeded'), 60_000);
    expect(await lockLapses(lastChance)).toBe(1);
    expect(sleeps.mostAtOnce).toBe(1);
  }, 120_000);
});
