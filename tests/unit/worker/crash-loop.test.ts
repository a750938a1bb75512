import { crashLoopReason } from '../../../services/core/jobs/lifecycle';
import { createLogger } from '../../../services/core/logger';
import { createMetrics } from '../../../services/core/metrics';
import { runsEndedWithWorker } from '../../../services/core/queue/relay';
import { CrashLoops } from '../../../services/worker/crash-loop';
import { deliveryRow, FakeTransitions } from './fake-transitions';

const log = createLogger({ service: 'crash-loop-test', level: 'silent' });

async function failedCount(metrics: ReturnType<typeof createMetrics>): Promise<number> {
  return (await metrics.jobsFailed.get()).values.reduce((sum, { value }) => sum + value, 0);
}

describe('runsEndedWithWorker', () => {
  it('adds the crashes an entry carries from before it existed to BullMQ\'s count', () => {
    expect(runsEndedWithWorker({ stalledCounter: 0, data: { jobId: 'x' } })).toBe(0);
    expect(runsEndedWithWorker({ stalledCounter: 1, data: { jobId: 'x' } })).toBe(1);
    expect(runsEndedWithWorker({ stalledCounter: 1, data: { jobId: 'x', crashes: 2 } })).toBe(3);
  });

  it('trusts no crash count that is not a positive integer', () => {
    for (const crashes of [-1, 0, 1.5, '2', null]) expect(runsEndedWithWorker({ stalledCounter: 1, data: { jobId: 'x', crashes } })).toBe(1);
    expect(runsEndedWithWorker({ stalledCounter: 2, data: null })).toBe(2);
  });
});

describe('CrashLoops', () => {
  let transitions: FakeTransitions;
  let metrics: ReturnType<typeof createMetrics>;
  let crashLoops: CrashLoops;
  let lockLapses: Map<string, number>;
  let lapsesReadable: boolean;
  beforeEach(() => {
    transitions = new FakeTransitions();
    metrics = createMetrics('crash-loop-test');
    lockLapses = new Map();
    lapsesReadable = true;
    const readLapses = async (jobId: string, entryAddedAt: number) => {
      if (!lapsesReadable) throw new Error('connection refused');
      return lockLapses.get(`${jobId}@${entryAddedAt}`) ?? 0;
    };
    crashLoops = new CrashLoops({ transitions, maxStalledCount: 2, lockLapses: readLapses, log, metrics });
  });

  it('charges a job the runs that ended with their worker, less those stopped for locks Redis let lapse', async () => {
    lockLapses.set('long-job@1000', 3);
    await expect(crashLoops.charged('long-job', 3, 1000)).resolves.toBe(0);
    await expect(crashLoops.charged('long-job', 5, 1000)).resolves.toBe(2);
    await expect(crashLoops.charged('other-job', 3, 1000)).resolves.toBe(3);
    // The lapses of another entry of the job's excuse nothing here.
    await expect(crashLoops.charged('long-job', 3, 2000)).resolves.toBe(3);
  });

  it('charges every interrupted run when the lapses cannot be read, as a crash loop was judged before they were recorded', async () => {
    lockLapses.set('long-job@1000', 3);
    lapsesReadable = false;
    await expect(crashLoops.charged('long-job', 3, 1000)).resolves.toBe(3);
    // No read at all for a job never interrupted.
    await expect(crashLoops.charged('long-job', 0, 1000)).resolves.toBe(0);
  });

  it('calls more runs than maxStalledCount that ended with their worker a crash loop', () => {
    expect(crashLoops.isCrashLoop(2)).toBe(false);
    expect(crashLoops.isCrashLoop(3)).toBe(true);
  });

  it('sends a job to the recovery lane only on its last chance: one more interrupted run would make it a crash loop', () => {
    expect([0, 1, 2, 3].map((runs) => crashLoops.isLastChance(runs))).toEqual([false, false, true, false]);
  });

  it('plans a given-up entry with its maxStalledCount: abandoned past it, queued again at or under it', () => {
    expect(crashLoops.planGivenUp(3)).toEqual({ event: 'abandon', reason: crashLoopReason(3) });
    expect(crashLoops.planGivenUp(2)).toEqual({ event: 'requeue', crashes: 2 });
  });

  it('counts an entry BullMQ gave up on as at least one run past the limit', () => {
    expect(crashLoops.runsOfGivenUpEntry({ stalledCounter: 1, data: {} })).toBe(3);
    expect(crashLoops.runsOfGivenUpEntry({ stalledCounter: 3, data: { crashes: 2 } })).toBe(5);
  });

  it('dead-letters a runnable job through the abandon event, from the state it is in, with the reason', async () => {
    const running = transitions.add(deliveryRow({ status: 'running', attempts: 2 }));
    await crashLoops.deadLetter(running.id, crashLoopReason(3));
    expect(transitions.recorded).toEqual([{ event: 'abandon', jobId: running.id, attempt: 2, at: expect.any(Number), reason: crashLoopReason(3), from: 'running' }]);
    expect(await failedCount(metrics)).toBe(1);
  });

  it('records nothing for a job no longer runnable, or missing', async () => {
    const done = transitions.add(deliveryRow({ status: 'succeeded', attempts: 1 }));
    await crashLoops.deadLetter(done.id, crashLoopReason(4));
    await crashLoops.deadLetter('00000000-0000-4000-8000-000000000000', crashLoopReason(4));
    expect(transitions.recorded).toEqual([]);
    expect(await failedCount(metrics)).toBe(0);
  });

  it('counts no failure when the abandon did not apply (the job moved on meanwhile)', async () => {
    const queued = transitions.add(deliveryRow());
    transitions.refuse = () => true;
    await crashLoops.deadLetter(queued.id, crashLoopReason(3));
    expect(transitions.events()).toEqual(['abandon']);
    expect(await failedCount(metrics)).toBe(0);
  });
});
