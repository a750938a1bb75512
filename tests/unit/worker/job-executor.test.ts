import type { Pool } from 'pg';
import { fileMemoryBytes, type FileView, type JobTypeDefinition } from '../../../services/contract';
import { echo, fileChecksum, textStats } from '../../../services/contract/jobs';
import { NotFoundError } from '../../../services/core/errors';
import type { FileService } from '../../../services/core/files/types';
import { deferralsExhaustedReason, MAX_DEFERRALS } from '../../../services/core/jobs/lifecycle';
import type { WorkerTransition } from '../../../services/core/jobs/transitions';
import { createLogger } from '../../../services/core/logger';
import { createMetrics } from '../../../services/core/metrics';
import { MAX_BACKOFF_MS } from '../../../services/worker/backoff';
import { MemoryBudget } from '../../../services/core/memory-budget';
import { JobExecutor, type JobExecutorOptions } from '../../../services/worker/job-executor';
import { PermanentJobError, type MailDrop, type Processor, type ProcessorContext } from '../../../services/worker/processor';
import { deliveryRow, FakeTransitions } from './fake-transitions';
import type { DeliveryRow } from '../../../services/core/db/jobs';

const log = createLogger({ service: 'job-executor-test', level: 'silent' });
/** The processors below touch neither files, PostgreSQL nor the mail drop. */
const untouched = { files: {} as FileService, batchPool: {} as Pool, generalPool: {} as Pool, mailDrop: {} as MailDrop, inputBudget: new MemoryBudget(1), fileMemoryBudget: new MemoryBudget(1) };

/** An executor whose only processor is `run`, declared as the echo type (or `definition`). */
function executorWith(transitions: FakeTransitions, run: Processor['run'], overrides: Partial<JobExecutorOptions> & { definition?: JobTypeDefinition } = {}) {
  const { definition = echo, ...options } = overrides;
  const processor: Processor = { definition, run };
  const metrics = createMetrics('job-executor-test');
  const executor = new JobExecutor({
    transitions,
    ...untouched,
    processors: (type) => (type === 'echo' ? processor : undefined),
    log,
    metrics,
    progressIntervalMs: 60_000,
    ...options,
  });
  return { executor, metrics };
}

async function count(counter: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> {
  return (await counter.get()).values.reduce((sum, { value }) => sum + value, 0);
}

/** When the run recorded first started: the `at` of its start, which its later transitions name. */
function firstRunStart(transitions: FakeTransitions): number | undefined {
  return transitions.recorded.find((transition) => transition.event === 'start')?.at;
}

function outcome(transitions: FakeTransitions): WorkerTransition | undefined {
  return transitions.recorded.filter((transition) => transition.event !== 'start' && transition.event !== 'progress').at(-1);
}

describe('JobExecutor', () => {
  let transitions: FakeTransitions;
  beforeEach(() => {
    transitions = new FakeTransitions();
  });

  it('runs a queued job as its next attempt and records its result', async () => {
    const row = transitions.add(deliveryRow({ input: { payload: 'hi' } }));
    let seen: ProcessorContext<JobTypeDefinition> | undefined;
    const { executor, metrics } = executorWith(transitions, async (context) => {
      seen = context;
      return { result: context.input };
    });
    await expect(executor.execute(row.id)).resolves.toEqual({ kind: 'done' });
    expect(seen).toMatchObject({ jobId: row.id, ownerId: row.owner_id, attempt: 1, input: { payload: 'hi' } });
    expect(transitions.recorded).toEqual([
      { event: 'start', jobId: row.id, attempt: 1, at: expect.any(Number), from: 'queued' },
      { event: 'succeed', jobId: row.id, attempt: 1, at: expect.any(Number), result: { payload: 'hi' }, resultFileId: undefined, runStartedAt: firstRunStart(transitions) },
    ]);
    expect(await count(metrics.jobsStarted)).toBe(1);
    expect(await count(metrics.jobsSucceeded)).toBe(1);
    expect(executor.inFlight).toBe(0);
  });

  it('after a shutdown aborted every run, stops a delivery that begins later before it starts: nothing runs or is recorded, and it goes back as it was', async () => {
    const row = transitions.add(deliveryRow());
    const run = jest.fn(async () => ({ result: {} }));
    const { executor, metrics } = executorWith(transitions, run);
    executor.abortAll('shutdown');
    await expect(executor.execute(row.id)).resolves.toEqual({ kind: 'again', row, delayMs: 0 });
    expect(run).not.toHaveBeenCalled();
    expect(transitions.recorded).toEqual([]);
    expect(await count(metrics.jobsStarted)).toBe(0);
    expect(executor.inFlight).toBe(0);
  });

  it('holds a delivery in an entry of its own while its user runs their share: nothing runs or is recorded, and it comes back later', async () => {
    const row = transitions.add(deliveryRow());
    const run = jest.fn(async () => ({ result: {} }));
    const take = jest.fn(async () => ({ waitMs: 12_345 }));
    const { executor, metrics } = executorWith(transitions, run, { fairShare: { take } });
    await expect(executor.execute(row.id, { ownEntry: true })).resolves.toEqual({ kind: 'again', row, delayMs: 12_345 });
    expect(take).toHaveBeenCalledWith(row.owner_id, row.id, row.type);
    expect(run).not.toHaveBeenCalled();
    expect(transitions.recorded).toEqual([]);
    expect(await count(metrics.jobsStarted)).toBe(0);
  });

  it('runs a delivery on its user\'s share and frees the share once the outcome is written; a shared entry\'s jobs take none', async () => {
    const row = transitions.add(deliveryRow());
    const events: string[] = [];
    const take = jest.fn(async () => ({ share: { release: () => events.push(`release after ${transitions.recorded.map((t) => t.event).join(',')}`) } }));
    const { executor } = executorWith(transitions, async () => ({ result: {} }), { fairShare: { take } });
    await expect(executor.execute(row.id, { ownEntry: true })).resolves.toEqual({ kind: 'done' });
    expect(events).toEqual(['release after start,succeed']);
    const shared = transitions.add(deliveryRow());
    await expect(executor.execute(shared.id)).resolves.toEqual({ kind: 'done' });
    expect(take).toHaveBeenCalledTimes(1);
  });

  it('frees the share when the job fails for good too', async () => {
    const row = transitions.add(deliveryRow());
    const release = jest.fn();
    const { executor } = executorWith(
      transitions,
      async () => {
        throw new PermanentJobError('bad input');
      },
      { fairShare: { take: async () => ({ share: { release } }) } },
    );
    await expect(executor.execute(row.id, { ownEntry: true })).resolves.toEqual({ kind: 'dead', message: 'bad input' });
    expect(release).toHaveBeenCalledTimes(1);
  });

  it('runs a redelivery of a running job as the attempt it is in, its start naming the run it takes over', async () => {
    const row = transitions.add(deliveryRow({ status: 'running', attempts: 2, run_started_ms: 1_700_000_000_000 }));
    const { executor } = executorWith(transitions, async () => ({ result: {} }));
    await executor.execute(row.id);
    expect(transitions.recorded[0]).toMatchObject({ event: 'start', attempt: 2, from: 'running', takesOverRunStartedAt: 1_700_000_000_000 });
    expect(transitions.recorded[1]).toMatchObject({ event: 'succeed', runStartedAt: firstRunStart(transitions) });
  });

  describe('a redelivery whose own start is refused', () => {
    const readStart = 1_700_000_000_000;
    const landedStart = readStart + 5_000;
    const untilAborted: Processor['run'] = (context) => new Promise((_resolve, reject) => context.signal.addEventListener('abort', () => reject(new Error('aborted'))));

    /** A running job the delivery reads under `readStart`; as its own start is written, PostgreSQL holds the job as `after` says and refuses it. */
    function redeliveryRefused(after: Partial<DeliveryRow>, run: Processor['run'] = untilAborted) {
      const row = transitions.add(deliveryRow({ status: 'running', attempts: 1, run_started_ms: readStart }));
      const now = { ...row, ...after };
      transitions.refuse = (transition) => {
        if (transition.event === 'start') transitions.rows.set(row.id, now);
        return true;
      };
      return { row, now, executor: executorWith(transitions, run).executor };
    }

    it('as a start of another run of its attempt landed after the delivery read the job: hands the job on in its entry, to take that run over', async () => {
      const { row, now, executor } = redeliveryRefused({ run_started_ms: landedStart });
      await expect(executor.execute(row.id)).resolves.toEqual({ kind: 'again', row: now, delayMs: 0 });
      expect(transitions.events()).toEqual(['start']);
    });

    it('does so too when its outcome was written with its start, in one tick', async () => {
      const { row, now, executor } = redeliveryRefused({ run_started_ms: landedStart }, async () => ({ result: {} }));
      // The start is answered with the outcome, as the writer answers a tick's transitions together.
      const record = transitions.record.bind(transitions);
      let answerStart: (() => void) | undefined;
      transitions.record = async (transition) => {
        const applied = await record(transition);
        if (transition.event === 'start') await new Promise<void>((resolve) => (answerStart = resolve));
        else answerStart?.();
        return applied;
      };
      await expect(executor.execute(row.id)).resolves.toEqual({ kind: 'again', row: now, delayMs: 0 });
      expect(transitions.events()).toEqual(['start', 'succeed']);
    });

    it('as a concurrent write moved the row under it, the job still under the start the delivery read: hands the job on to take that run over again', async () => {
      const { row, now, executor } = redeliveryRefused({});
      await expect(executor.execute(row.id)).resolves.toEqual({ kind: 'again', row: now, delayMs: 0 });
    });

    it('ends without handing the job on when its start failed with an error rather than being refused', async () => {
      const row = transitions.add(deliveryRow({ status: 'running', attempts: 1, run_started_ms: readStart }));
      const record = transitions.record.bind(transitions);
      transitions.record = async (transition) => {
        if (transition.event === 'start') throw new Error('the statement failed');
        return record(transition);
      };
      const { executor } = executorWith(transitions, untilAborted);
      await expect(executor.execute(row.id)).resolves.toEqual({ kind: 'done' });
    });

    it.each<[string, Partial<DeliveryRow>]>([
      ['the job runs a later attempt', { attempts: 2, run_started_ms: landedStart }],
      ['the job ended', { status: 'succeeded', run_started_ms: null }],
    ])('ends without handing the job on when %s', async (_case, after) => {
      const { row, executor } = redeliveryRefused(after);
      await expect(executor.execute(row.id)).resolves.toEqual({ kind: 'done' });
    });
  });

  it('ends a first delivery whose start is refused as the job runs elsewhere without handing it on: that run holds it', async () => {
    const row = transitions.add(deliveryRow());
    transitions.refuse = (transition) => {
      if (transition.event === 'start') transitions.rows.set(row.id, { ...row, status: 'running', attempts: 1, run_started_ms: Date.now() });
      return true;
    };
    const { executor } = executorWith(transitions, async () => ({ result: {} }));
    await expect(executor.execute(row.id)).resolves.toEqual({ kind: 'done' });
  });

  it('skips a job that is finished or missing: nothing runs, nothing is recorded', async () => {
    const done = transitions.add(deliveryRow({ status: 'succeeded', attempts: 1 }));
    const run = jest.fn(async () => ({ result: {} }));
    const { executor } = executorWith(transitions, run);
    await expect(executor.execute(done.id)).resolves.toEqual({ kind: 'done' });
    await expect(executor.execute('00000000-0000-4000-8000-000000000000')).resolves.toEqual({ kind: 'done' });
    expect(run).not.toHaveBeenCalled();
    expect(transitions.recorded).toEqual([]);
  });

  it('retries a failed attempt while attempts remain: queued again after its backoff', async () => {
    const row = transitions.add(deliveryRow({ attempts: 1 }));
    const { executor, metrics } = executorWith(transitions, async () => {
      throw new Error('dependency down');
    });
    const settlement = await executor.execute(row.id);
    const retry = outcome(transitions);
    expect(retry).toMatchObject({ event: 'retry', attempt: 2, error: 'dependency down' });
    const retryInMs = (retry as Extract<WorkerTransition, { event: 'retry' }>).retryInMs;
    // echo's backoff is 500 ms; the second attempt's step is 1 s, jittered over its upper half.
    expect(retryInMs).toBeGreaterThanOrEqual(500);
    expect(retryInMs).toBeLessThanOrEqual(Math.min(MAX_BACKOFF_MS, 1_000));
    expect(settlement).toEqual({ kind: 'again', row, delayMs: retryInMs });
    expect(await count(metrics.jobsRetried)).toBe(1);
  });

  it('dead-letters the last attempt, and a permanent error at once', async () => {
    const last = transitions.add(deliveryRow({ attempts: 2, max_attempts: 3 }));
    const first = transitions.add(deliveryRow());
    const { executor, metrics } = executorWith(transitions, async (context) => {
      throw context.jobId === first.id ? new PermanentJobError('not a CSV file') : new Error('still down');
    });
    await expect(executor.execute(last.id)).resolves.toEqual({ kind: 'dead', message: 'still down' });
    await expect(executor.execute(first.id)).resolves.toEqual({ kind: 'dead', message: 'not a CSV file' });
    expect(transitions.recorded.filter((transition) => transition.event === 'fail')).toEqual([
      { event: 'fail', jobId: last.id, attempt: 3, at: expect.any(Number), error: 'still down', runStartedAt: expect.any(Number) },
      { event: 'fail', jobId: first.id, attempt: 1, at: expect.any(Number), error: 'not a CSV file', runStartedAt: expect.any(Number) },
    ]);
    expect(await count(metrics.jobsFailed)).toBe(2);
  });

  it('fails for good at once a job whose file is gone, without spending its other attempts', async () => {
    const row = transitions.add(deliveryRow({ input: { fileId: '1234', algorithm: 'sha256' } }));
    const files = { openContent: async () => Promise.reject(new NotFoundError('file 1234 not found')) } as unknown as FileService;
    const { executor } = executorWith(transitions, async (context) => context.files.open('1234').then(() => ({ result: { algorithm: 'sha256', digest: '' } })), { files, definition: fileChecksum });
    await expect(executor.execute(row.id)).resolves.toEqual({ kind: 'dead', message: 'file 1234 not found' });
    expect(transitions.recorded.filter((transition) => transition.event === 'retry')).toEqual([]);
  });

  it('opens only the files its input names in the fields its type declares with FileId', async () => {
    const row = transitions.add(deliveryRow({ input: { fileId: 'named', algorithm: 'sha256' } }));
    const opened: string[] = [];
    const files = { openContent: async (_owner: string, fileId: string) => Promise.reject(new NotFoundError(`opened ${opened.push(fileId) && fileId}`)) } as unknown as FileService;
    const { executor } = executorWith(transitions, async (context) => context.files.open('someone-elses').then(() => ({ result: { algorithm: 'sha256', digest: '' } })), { files, definition: fileChecksum });
    await expect(executor.execute(row.id)).resolves.toEqual({ kind: 'dead', message: 'file someone-elses is not named by a file field of the job\'s input' });
    expect(opened).toEqual([]);
  });

  it('defers a job of a type this worker has no processor for (the API runs a newer release): its attempt not charged', async () => {
    const unknown = transitions.add(deliveryRow({ type: 'no.such.type', attempts: 2, max_attempts: 3 }));
    const { executor, metrics } = executorWith(transitions, async () => ({ result: { payload: 'never run' } }));
    const settlement = await executor.execute(unknown.id);
    expect(outcome(transitions)).toMatchObject({ event: 'defer', attempt: 3, dependency: "the worker's release", error: 'no processor for job type "no.such.type" in this worker\'s release', deferrals: 1 });
    expect(settlement).toMatchObject({ kind: 'again' });
    expect((await metrics.jobsDeferred.get()).values).toEqual([{ value: 1, labels: { type: 'no.such.type', dependency: "the worker's release" } }]);
  });

  it('fails for good a result outside the type\'s schema', async () => {
    const invalid = transitions.add(deliveryRow());
    const { executor } = executorWith(transitions, async () => ({ result: 'not an object' }));
    const settlement = await executor.execute(invalid.id);
    expect(settlement).toMatchObject({ kind: 'dead', message: expect.stringMatching(/^the processor returned an invalid result: /) });
  });

  it('keeps an error message to 2,000 characters', async () => {
    const row = transitions.add(deliveryRow({ max_attempts: 1 }));
    const { executor } = executorWith(transitions, async () => {
      throw new Error('x'.repeat(3_000));
    });
    await executor.execute(row.id);
    expect(outcome(transitions)).toMatchObject({ event: 'fail', error: `${'x'.repeat(2_000)}…` });
  });

  it('stops an attempt that runs past its type\'s timeout, though the processor ignores its signal', async () => {
    const row = transitions.add(deliveryRow());
    const { executor } = executorWith(transitions, () => new Promise<never>(() => undefined), { definition: { ...echo, timeoutMs: 30 } });
    const settlement = await executor.execute(row.id);
    expect(outcome(transitions)).toMatchObject({ event: 'retry', attempt: 1, error: 'the job ran past its type\'s timeout of 30 ms and was stopped' });
    expect(settlement).toMatchObject({ kind: 'again' });
  });

  it('defers an attempt that failed on the platform\'s infrastructure: queued again after a backoff, the attempt not charged, even the last', async () => {
    const row = transitions.add(deliveryRow({ attempts: 1, max_attempts: 2, deferrals: 3 }));
    const { executor, metrics } = executorWith(transitions, async () => {
      // What pg's pool rejects a query with when no connection came within its timeout.
      throw new Error('timeout exceeded when trying to connect');
    });
    const settlement = await executor.execute(row.id);
    const deferral = outcome(transitions) as Extract<WorkerTransition, { event: 'defer' }>;
    expect(deferral).toEqual({
      event: 'defer',
      jobId: row.id,
      attempt: 2,
      at: expect.any(Number),
      dependency: 'PostgreSQL',
      error: 'timeout exceeded when trying to connect',
      deferrals: 4,
      retryInMs: expect.any(Number),
      runStartedAt: firstRunStart(transitions),
    });
    // echo's backoff is 500 ms; the fourth deferral's step is 4 s, jittered over its upper half.
    expect(deferral.retryInMs).toBeGreaterThanOrEqual(2_000);
    expect(deferral.retryInMs).toBeLessThanOrEqual(4_000);
    expect(settlement).toEqual({ kind: 'again', row, delayMs: deferral.retryInMs });
    expect(transitions.events()).toEqual(['start', 'defer']);
    expect((await metrics.jobsDeferred.get()).values).toEqual([{ value: 1, labels: { type: 'echo', dependency: 'PostgreSQL' } }]);
    expect(await count(metrics.jobsRetried)).toBe(0);
    expect(await count(metrics.jobsFailed)).toBe(0);
  });

  it('dead-letters a job whose runs keep failing on the infrastructure once its deferrals are spent, with the reason', async () => {
    const row = transitions.add(deliveryRow({ deferrals: MAX_DEFERRALS }));
    const { executor, metrics } = executorWith(transitions, async () => {
      throw new Error('Command timed out');
    });
    const reason = deferralsExhaustedReason(MAX_DEFERRALS, { dependency: 'Redis', error: 'Command timed out' });
    await expect(executor.execute(row.id)).resolves.toEqual({ kind: 'dead', message: reason });
    expect(outcome(transitions)).toEqual({ event: 'abandon', jobId: row.id, attempt: 1, at: expect.any(Number), reason, from: 'running', runStartedAt: firstRunStart(transitions) });
    expect(await count(metrics.jobsFailed)).toBe(1);
  });

  it('charges the attempt of what is the job\'s own, whatever its message says: a permanent error, the type\'s timeout', async () => {
    const permanent = transitions.add(deliveryRow());
    const { executor } = executorWith(transitions, async () => {
      throw new PermanentJobError('Connection terminated unexpectedly');
    });
    await expect(executor.execute(permanent.id)).resolves.toMatchObject({ kind: 'dead' });
    expect(outcome(transitions)).toMatchObject({ event: 'fail', attempt: 1 });

    const slow = transitions.add(deliveryRow());
    const timedOut = executorWith(transitions, () => new Promise<never>(() => undefined), { definition: { ...echo, timeoutMs: 30 } });
    await timedOut.executor.execute(slow.id);
    expect(outcome(transitions)).toMatchObject({ event: 'retry', jobId: slow.id, attempt: 1 });
  });

  it('releases a job aborted at shutdown: queued again at once, no failure recorded', async () => {
    const row = transitions.add(deliveryRow());
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const { executor } = executorWith(transitions, async (context) => {
      started();
      await new Promise((_resolve, reject) => context.signal.addEventListener('abort', () => reject(new Error('aborted'))));
      return { result: {} };
    });
    const settlement = executor.execute(row.id);
    await running;
    expect(executor.inFlight).toBe(1);
    executor.abortAll('shutdown');
    await expect(settlement).resolves.toEqual({ kind: 'again', row, delayMs: 0 });
    expect(transitions.events()).toEqual(['start', 'release']);
    expect(executor.inFlight).toBe(0);
  });

  describe('an outcome refused while the job stays in this run (a concurrent write moved its row)', () => {
    /** Refuses the run's outcome `times` times, the row read afterwards still running this attempt under this run's start. */
    function outcomeRefused(row: DeliveryRow, times: number) {
      let refusals = 0;
      transitions.refuse = (transition) => {
        if (transition.event === 'start' || transition.event === 'progress') return false;
        transitions.rows.set(row.id, { ...row, status: 'running', attempts: 1, run_started_ms: firstRunStart(transitions) ?? null });
        refusals += 1;
        return refusals <= times;
      };
    }

    it.each<[string, Processor['run'], string]>([
      ['a result', async () => ({ result: { payload: 'kept' } }), 'succeed'],
      ['a failed attempt', async () => Promise.reject(new Error('boom')), 'retry'],
    ])('writes %s again and settles as written', async (_case, run, event) => {
      const row = transitions.add(deliveryRow());
      outcomeRefused(row, 1);
      const { executor } = executorWith(transitions, run);
      const settlement = await executor.execute(row.id);
      expect(settlement.kind).toBe(event === 'succeed' ? 'done' : 'again');
      expect(transitions.events()).toEqual(['start', event, event]);
      expect(transitions.recorded[2]).toEqual(transitions.recorded[1]);
    });

    it('gives up after a few rewrites, each of which needs another such write', async () => {
      const row = transitions.add(deliveryRow());
      outcomeRefused(row, Number.POSITIVE_INFINITY);
      const { executor } = executorWith(transitions, async () => ({ result: {} }));
      await expect(executor.execute(row.id)).resolves.toEqual({ kind: 'done' });
      expect(transitions.events()).toEqual(['start', 'succeed', 'succeed', 'succeed', 'succeed']);
    });

    it.each<[string, Partial<DeliveryRow>]>([
      ['another run of the attempt started', { run_started_ms: 1_700_000_000_000 }],
      ['the job runs a later attempt', { attempts: 2 }],
      ['the job was cancelled', { status: 'cancelled' }],
    ])('does not write it again when %s', async (_case, after) => {
      const row = transitions.add(deliveryRow());
      transitions.refuse = (transition) => {
        if (transition.event !== 'succeed') return false;
        transitions.rows.set(row.id, { ...row, status: 'running', attempts: 1, run_started_ms: firstRunStart(transitions) ?? null, ...after });
        return true;
      };
      const { executor } = executorWith(transitions, async () => ({ result: {} }));
      await executor.execute(row.id);
      expect(transitions.events()).toEqual(['start', 'succeed']);
    });
  });

  it('stops a cancelled job without an outcome of its own (the cancel wrote it)', async () => {
    const row = transitions.add(deliveryRow());
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const { executor } = executorWith(transitions, () => {
      started();
      return new Promise<never>(() => undefined);
    });
    const settlement = executor.execute(row.id);
    await running;
    // What the cancel wrote before its signal reached the worker: the run's release finds the job cancelled.
    transitions.rows.set(row.id, { ...row, status: 'cancelled' });
    transitions.refuse = (transition) => transition.event === 'release';
    executor.abort(row.id, 'cancelled');
    await expect(settlement).resolves.toEqual({ kind: 'done' });
    expect(transitions.events()).toEqual(['start', 'release']);
  });

  it('stops the run when its start does not apply (cancelled or finished elsewhere meanwhile)', async () => {
    const row = transitions.add(deliveryRow());
    transitions.refuse = (transition) => {
      // Cancelled between the delivery read and the start.
      transitions.rows.set(row.id, { ...row, status: 'cancelled' });
      return transition.event === 'start';
    };
    let signal: AbortSignal | undefined;
    const { executor } = executorWith(transitions, (context) => {
      signal = context.signal;
      return new Promise<never>(() => undefined);
    });
    await expect(executor.execute(row.id)).resolves.toEqual({ kind: 'done' });
    expect(signal?.reason).toMatchObject({ name: 'JobAbortedError', kind: 'not-runnable' });
    expect(transitions.events()).toEqual(['start']);
  });

  it('writes progress throttled, the first report at once', async () => {
    const row = transitions.add(deliveryRow());
    const { executor } = executorWith(transitions, async (context) => {
      context.progress(10);
      context.progress(50);
      context.progress(90);
      return { result: {} };
    });
    await executor.execute(row.id);
    expect(transitions.recorded.filter((transition) => transition.event === 'progress')).toEqual([{ event: 'progress', jobId: row.id, attempt: 1, progress: 10, runStartedAt: firstRunStart(transitions) }]);
  });

  it('logs for a job with its id and the request id that submitted it', async () => {
    const row = transitions.add(deliveryRow({ request_id: 'req-42' }));
    const lines: Record<string, unknown>[] = [];
    const capturing = createLogger({ service: 'job-executor-test', level: 'info', destination: { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) } });
    const { executor } = executorWith(
      transitions,
      async (context) => {
        context.log.info('from the processor');
        return { result: {} };
      },
      { log: capturing },
    );
    await executor.execute(row.id);
    expect(lines.find((line) => line.msg === 'from the processor')).toMatchObject({ jobId: row.id, requestId: 'req-42' });
  });
});

describe('JobExecutor: memory that grows with a job\'s file', () => {
  const MiB = 1_048_576;
  const fileId = '6f1c1b2e-3c4d-4e5f-8a9b-0c1d2e3f4a5b';
  /** text.stats' declaration over a file of one MiB: what such a job reserves. */
  const needed = fileMemoryBytes(textStats.fileMemory?.({ fileId }) ?? [{ bytes: 0, perFileByte: 0 }], MiB);
  const filesOf = (size: number) => ({ get: async (ownerId: string, id: string) => ({ id, size }) as FileView }) as unknown as FileService;
  let transitions: FakeTransitions;
  beforeEach(() => {
    transitions = new FakeTransitions();
  });

  it('reserves what the job\'s file may make it hold before the run, and gives it back once the outcome is written', async () => {
    const row = transitions.add(deliveryRow({ type: 'echo', input: { fileId } }));
    const fileMemoryBudget = new MemoryBudget(100 * MiB);
    let heldDuringRun: number | undefined;
    const { executor } = executorWith(
      transitions,
      async () => {
        heldDuringRun = fileMemoryBudget.held;
        return { result: { bytes: 0, lines: 0, words: 0, topWords: [] } };
      },
      { definition: textStats, files: filesOf(MiB), fileMemoryBudget },
    );
    await expect(executor.execute(row.id)).resolves.toEqual({ kind: 'done' });
    expect(heldDuringRun).toBe(needed);
    expect(fileMemoryBudget.held).toBe(0);
    expect(transitions.events()).toEqual(['start', 'succeed']);
  });

  it('holds a job until the budget has room: not started meanwhile, the wait logged and counted, run once room frees', async () => {
    const row = transitions.add(deliveryRow({ type: 'echo', input: { fileId } }));
    const fileMemoryBudget = new MemoryBudget(20 * MiB);
    const holder = await fileMemoryBudget.acquire(10 * MiB, row.owner_id);
    const lines: Record<string, unknown>[] = [];
    const capturing = createLogger({ service: 'job-executor-test', level: 'info', destination: { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) } });
    const { executor, metrics } = executorWith(transitions, async () => ({ result: { bytes: 0, lines: 0, words: 0, topWords: [] } }), {
      definition: textStats,
      files: filesOf(MiB),
      fileMemoryBudget,
      log: capturing,
    });
    const settlement = executor.execute(row.id);
    await new Promise((resolve) => setImmediate(resolve));
    expect(fileMemoryBudget.waiting).toBe(1);
    expect(transitions.recorded).toEqual([]);
    expect(lines.find((line) => line.budget === 'file')).toMatchObject({ jobId: row.id, bytes: needed, heldBytes: 10 * MiB, budgetBytes: 20 * MiB, msg: "job waits for room in the worker's file memory budget" });
    expect(await count(metrics.jobsMemoryWaits)).toBe(1);
    holder();
    await expect(settlement).resolves.toEqual({ kind: 'done' });
    expect(transitions.events()).toEqual(['start', 'succeed']);
  });

  it('reserves nothing for a job whose file is gone: it fails for good as it opens it', async () => {
    const row = transitions.add(deliveryRow({ type: 'echo', input: { fileId } }));
    const gone = () => Promise.reject(new NotFoundError(`file ${fileId} not found`));
    const files = { get: gone, openContent: gone } as unknown as FileService;
    const held: number[] = [];
    const fileMemoryBudget = new MemoryBudget(MiB, (state) => held.push(state.held));
    const { executor } = executorWith(transitions, async (context) => context.files.open(fileId).then(() => ({ result: { bytes: 0, lines: 0, words: 0, topWords: [] } })), {
      definition: textStats,
      files,
      fileMemoryBudget,
    });
    await expect(executor.execute(row.id)).resolves.toEqual({ kind: 'dead', message: `file ${fileId} not found` });
    expect(held).toEqual([]);
  });

  it('reads no file for a type that declares no such memory', async () => {
    const row = transitions.add(deliveryRow());
    const files = { get: () => Promise.reject(new Error('not to be read')) } as unknown as FileService;
    const { executor } = executorWith(transitions, async (context) => ({ result: context.input }), { files });
    await expect(executor.execute(row.id)).resolves.toEqual({ kind: 'done' });
  });
});
