/**
 * File jobs whose memory grows with their file (text.stats here), through the real runner,
 * PostgreSQL and Redis: a worker runs at once only as many as its file memory budget
 * (WORKER_FILE_MEMORY_BUDGET_BYTES) has room for, by what each one's file may need; the
 * others wait for room, queued with no attempt spent, and then run: every one succeeds.
 */
import { Readable } from 'node:stream';
import { fileMemoryBytes, METRICS, textStats } from '../../../services/contract';
import { createMetrics, type Metrics } from '../../../services/core/metrics';
import { findProcessor } from '../../../services/worker/jobs';
import type { Processor } from '../../../services/worker/processor';
import { createEngineFixture, submission, untilAborted, waitFor, type EngineFixture } from './fixture';

const FILE_BYTES = 256 * 1024;

/** Distinct words up to `bytes`, so the run has a table of words to fill. */
function distinctWords(bytes: number): Buffer {
  const words: string[] = [];
  for (let n = 0, length = 0; length < bytes; n += 1) {
    const word = `w${n.toString(36)} `;
    words.push(word);
    length += word.length;
  }
  return Buffer.from(words.join('').slice(0, bytes));
}

/** A metric's value for the file budget, summed over its other labels; 0 when the worker exports none. */
async function fileBudgetMetric(metrics: Metrics, name: string): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  const values = metric ? (await metric.get()).values : [];
  return values.filter((value) => value.labels.budget === 'file').reduce((sum, { value }) => sum + value, 0);
}

describe('job engine: file jobs within the worker\'s file memory budget', () => {
  let fx: EngineFixture;
  let fileId: string;
  /** What one text.stats job on the file reserves. */
  let reservation: number;

  beforeAll(async () => {
    fx = await createEngineFixture();
    const file = await fx.core.files.upload({ ownerId: fx.ownerId, name: 'words.txt', contentType: 'text/plain', body: Readable.from(distinctWords(FILE_BYTES)), maxBytes: FILE_BYTES });
    fileId = file.id;
    const declared = textStats.fileMemory?.({ fileId });
    if (!declared) throw new Error('text.stats declares no file memory');
    reservation = fileMemoryBytes(declared, file.size);
  });
  afterAll(async () => {
    await fx?.close();
  });

  /**
   * Submits `jobs` text.stats jobs on the file to a runner whose file memory budget is
   * `budgetBytes`. Each run is held at its start until every job has either started or is
   * waiting for room, so all had their chance to run side by side (a worker without the
   * bound runs them all at once); the test reads the state of that moment, then lets them go.
   */
  async function runTextStats(jobs: number, budgetBytes: number) {
    const metrics = createMetrics('file-memory-test');
    const textStatsProcessor = findProcessor(textStats.type);
    if (!textStatsProcessor) throw new Error('no text.stats processor');
    let running = 0;
    let peak = 0;
    let letGo: () => void = () => undefined;
    const go = new Promise<void>((resolve) => (letGo = resolve));
    const observed: Processor = {
      definition: textStatsProcessor.definition,
      run: async (context) => {
        running += 1;
        peak = Math.max(peak, running);
        try {
          await go;
          return await textStatsProcessor.run(context);
        } finally {
          running -= 1;
        }
      },
    };
    const runner = await fx.startRunner({ fileMemoryBudgetBytes: budgetBytes }, { metrics, processors: (type) => (type === textStats.type ? observed : findProcessor(type)) });
    const ids = await Promise.all(Array.from({ length: jobs }, async () => (await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: textStats.type, input: { fileId } }))).job.id));
    await waitFor('every job to run or wait for room', async () => running + (await fileBudgetMetric(metrics, METRICS.workerMemoryWaiting)) === jobs);
    const atOnce = running;
    const states = await waitFor('the running jobs\' starts to be written', async () => {
      const rows = await fx.query<{ status: string; attempts: number }>('SELECT status, attempts FROM jobs WHERE id = ANY($1) ORDER BY status', [ids]);
      return rows.filter((row) => row.status === 'running').length === atOnce && rows;
    });
    letGo();
    const finished = await Promise.all(
      ids.map((id) =>
        waitFor(`job ${id} to finish`, async () => {
          const job = await fx.core.jobs.get(fx.ownerId, id);
          return ['succeeded', 'failed', 'cancelled'].includes(job.status) && job;
        }),
      ),
    );
    await runner.stop(1_000);
    return {
      atOnce,
      peak,
      states,
      finished: finished.map(({ status, result }) => ({ status, bytes: (result as { bytes?: number } | null)?.bytes })),
      waits: await fileBudgetMetric(metrics, METRICS.jobsMemoryWaits),
      heldAfter: await fileBudgetMetric(metrics, METRICS.workerMemoryHeld),
    };
  }

  it('runs at once only what the budget has room for; the others wait queued, their attempts not spent, and all succeed', async () => {
    const jobs = 6;
    const outcome = await runTextStats(jobs, 2 * reservation);
    expect(outcome.atOnce).toBe(2);
    expect(outcome.states).toEqual([...Array.from({ length: jobs - 2 }, () => ({ status: 'queued', attempts: 0 })), { status: 'running', attempts: 1 }, { status: 'running', attempts: 1 }]);
    expect(outcome.peak).toBe(2);
    expect(outcome.finished).toEqual(Array.from({ length: jobs }, () => ({ status: 'succeeded', bytes: FILE_BYTES })));
    expect(outcome.waits).toBe(jobs - 2);
    expect(outcome.heldAfter).toBe(0);
  });

  it('lets another user\'s job in after the running one, not after every job of a user\'s backlog', async () => {
    const bob = await fx.createUser();
    const bobFile = await fx.core.files.upload({ ownerId: bob, name: 'words.txt', contentType: 'text/plain', body: Readable.from(distinctWords(FILE_BYTES)), maxBytes: FILE_BYTES });
    const metrics = createMetrics('file-memory-turns-test');
    const textStatsProcessor = findProcessor(textStats.type);
    if (!textStatsProcessor) throw new Error('no text.stats processor');
    const starts: string[] = [];
    let letGo: () => void = () => undefined;
    const go = new Promise<void>((resolve) => (letGo = resolve));
    const observed: Processor = {
      definition: textStatsProcessor.definition,
      run: async (context) => {
        starts.push(context.ownerId === bob ? 'bob' : 'alice');
        await go;
        return textStatsProcessor.run(context);
      },
    };
    // Room for one job at a time: Alice's backlog of four fills the line before Bob submits.
    const runner = await fx.startRunner({ fileMemoryBudgetBytes: reservation }, { metrics, processors: (type) => (type === textStats.type ? observed : findProcessor(type)) });
    const submit = async (ownerId: string, id: string) => (await fx.core.jobs.submit(submission({ ownerId, type: textStats.type, input: { fileId: id } }))).job.id;
    const alices = [];
    for (let n = 0; n < 4; n += 1) alices.push(await submit(fx.ownerId, fileId));
    await waitFor('one of Alice\'s jobs to run and the others to wait for room', async () => starts.length === 1 && (await fileBudgetMetric(metrics, METRICS.workerMemoryWaiting)) === 3);
    const bobs = await submit(bob, bobFile.id);
    await waitFor('Bob\'s job to wait for room', async () => (await fileBudgetMetric(metrics, METRICS.workerMemoryWaiting)) === 4);
    letGo();
    await Promise.all(
      [...alices.map((id) => ({ id, ownerId: fx.ownerId })), { id: bobs, ownerId: bob }].map(({ id, ownerId }) =>
        waitFor(`job ${id} to succeed`, async () => (await fx.core.jobs.get(ownerId, id)).status === 'succeeded'),
      ),
    );
    await runner.stop(1_000);
    expect(starts).toEqual(['alice', 'bob', 'alice', 'alice', 'alice']);
  });

  /** A text.stats processor that counts its runs and holds each until let go (or stopped). */
  function heldTextStats() {
    const textStatsProcessor = findProcessor(textStats.type);
    if (!textStatsProcessor) throw new Error('no text.stats processor');
    const held = { runs: 0, letGo: () => undefined as void };
    const go = new Promise<void>((resolve) => (held.letGo = resolve));
    const processor: Processor = {
      definition: textStatsProcessor.definition,
      run: async (context) => {
        held.runs += 1;
        await Promise.race([go, untilAborted(context.signal)]);
        return textStatsProcessor.run(context);
      },
    };
    return { held, processors: (type: string) => (type === textStats.type ? processor : findProcessor(type)) };
  }

  /** Two text.stats jobs on a runner with room for one: the first runs (held), the second waits for room. */
  async function oneRunningOneWaiting() {
    const metrics = createMetrics('file-memory-abort-test');
    const { held, processors } = heldTextStats();
    const runner = await fx.startRunner({ fileMemoryBudgetBytes: reservation }, { metrics, processors });
    const submit = async () => (await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: textStats.type, input: { fileId } }))).job.id;
    const running = await submit();
    await waitFor('the first job to run', async () => held.runs === 1);
    const waiting = await submit();
    await waitFor('the second job to wait for room', async () => (await fileBudgetMetric(metrics, METRICS.workerMemoryWaiting)) === 1);
    return { runner, metrics, held, running, waiting };
  }

  const eventsOf = async (jobId: string) =>
    (await fx.query<{ from_status: string | null; to_status: string }>('SELECT from_status, to_status FROM job_events WHERE job_id = $1 ORDER BY id', [jobId])).map(
      (event) => [event.from_status, event.to_status],
    );

  it('ends the wait of a job cancelled while it waits for room: it never runs, and leaves the line at once', async () => {
    const { runner, metrics, held, running, waiting } = await oneRunningOneWaiting();
    await fx.core.jobs.cancel(fx.ownerId, waiting);
    await waitFor('the cancelled job to leave the line', async () => (await fileBudgetMetric(metrics, METRICS.workerMemoryWaiting)) === 0);
    held.letGo();
    await waitFor('the running job to succeed', async () => (await fx.core.jobs.get(fx.ownerId, running)).status === 'succeeded');
    await runner.stop(1_000);
    expect(held.runs).toBe(1);
    expect(await eventsOf(waiting)).toEqual([
      [null, 'queued'],
      ['queued', 'cancelled'],
    ]);
    expect(await fileBudgetMetric(metrics, METRICS.workerMemoryHeld)).toBe(0);
  });

  it('hands a job waiting for room back to the queue at shutdown as it was, and runs nothing BullMQ hands over as it closes', async () => {
    const { runner, held, running, waiting } = await oneRunningOneWaiting();
    await runner.stop(0);
    expect(held.runs).toBe(1);
    expect(await fx.one('SELECT status, attempts FROM jobs WHERE id = $1', [waiting])).toEqual({ status: 'queued', attempts: 0 });
    expect(await eventsOf(waiting)).toEqual([[null, 'queued']]);
    // The running one was released, its attempt given back.
    expect(await fx.one('SELECT status, attempts FROM jobs WHERE id = $1', [running])).toEqual({ status: 'queued', attempts: 0 });
    // Not left for the next runner to take.
    for (const jobId of [running, waiting]) await fx.core.jobs.cancel(fx.ownerId, jobId);
  });

  it('runs a job whose file needs more than the whole budget alone, and still runs every one', async () => {
    const jobs = 4;
    const outcome = await runTextStats(jobs, reservation - 1);
    expect(outcome.atOnce).toBe(1);
    expect(outcome.peak).toBe(1);
    expect(outcome.finished).toEqual(Array.from({ length: jobs }, () => ({ status: 'succeeded', bytes: FILE_BYTES })));
  });
});
