import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Readable } from 'node:stream';
import { echo, sleep } from '../../../services/contract';
import { ValidationError } from '../../../services/core/errors';
import { TransitionWriter } from '../../../services/core/jobs/transitions';
import { findProcessor } from '../../../services/worker/jobs';
import { defineProcessor, type Processor } from '../../../services/worker/processor';
import { startPostgres, type PostgresServer } from '../../harness/postgres';
import { useSharedServices } from '../../harness/shared';
import { createEngineFixture, submission, statusOf, waitFor, type EngineFixture } from './fixture';

describe('job engine: one job\'s fault stays with that job', () => {
  let fx: EngineFixture;

  beforeEach(async () => {
    fx = await createEngineFixture();
  });
  afterEach(async () => {
    await fx?.close();
  });

  it('a state write PostgreSQL refuses for one job\'s data fails that job alone; the rest of its batch is written', async () => {
    const writer = new TransitionWriter({ batchPool: fx.core.batchPool, generalPool: fx.core.generalPool, log: fx.log });
    const jobs = await Promise.all(Array.from({ length: 12 }, (_, index) => fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: index } }))));
    const ids = jobs.map(({ job }) => job.id);
    const bad = ids[5] as string;
    const now = Date.now();
    // Recorded in one turn of the event loop: one batch, one statement, unless a row is at fault.
    const outcomes = ids.map((id) => {
      void writer.record({ event: 'start', jobId: id, attempt: 1, at: now, from: 'queued' });
      // A result file that does not exist violates the foreign key (23503): this row's fault only.
      return writer.record({ event: 'succeed', jobId: id, attempt: 1, at: now, result: { payload: 'done' }, resultFileId: id === bad ? randomUUID() : undefined });
    });
    const applied = await Promise.all(outcomes);
    await writer.close();
    expect(applied).toEqual(ids.map((id) => id !== bad));
    for (const id of ids.filter((id) => id !== bad)) {
      expect(await fx.core.jobs.get(fx.ownerId, id)).toMatchObject({ status: 'succeeded', attempts: 1, result: { payload: 'done' } });
    }
    const failed = await fx.core.jobs.get(fx.ownerId, bad);
    expect(failed).toMatchObject({ status: 'failed', attempts: 1, result: null, resultFileId: null });
    expect(failed.error).toMatch(/^the job's outcome could not be stored: .*foreign key/);
    // Its start and its outcome were one write from queued: the trail shows the start, then the fail from running.
    const trail = await fx.query<{ from_status: string | null; to_status: string; detail: string | null }>(
      'SELECT from_status, to_status, detail FROM job_events WHERE job_id = $1 ORDER BY id',
      [bad],
    );
    expect(trail).toEqual([
      { from_status: null, to_status: 'queued', detail: null },
      { from_status: 'queued', to_status: 'running', detail: null },
      { from_status: 'running', to_status: 'failed', detail: failed.error },
    ]);
  });

  it('a batch INSERT with one row PostgreSQL refuses stores the others; that submitter alone gets a 400-class error', async () => {
    const submits = Array.from({ length: 12 }, (_, index) =>
      fx.core.jobs.submitInternal({
        ownerId: fx.ownerId,
        type: 'email.send',
        // NUL cannot be stored in jsonb (22P05): a fault of this row only.
        input: { to: 'someone@example.test', subject: `message ${index}`, text: index === 4 ? 'bad\u0000text' : 'fine' },
      }),
    );
    const results = await Promise.allSettled(submits);
    expect(results.map((result) => result.status)).toEqual(results.map((_, index) => (index === 4 ? 'rejected' : 'fulfilled')));
    const refused = results[4] as PromiseRejectedResult;
    expect(refused.reason).toBeInstanceOf(ValidationError);
    expect(String(refused.reason.message)).toMatch(/cannot be stored/);
    const { count } = await fx.one<{ count: number }>("SELECT count(*)::int AS count FROM jobs WHERE type = 'email.send'");
    expect(count).toBe(11);
  });

  it('a CSV with a NUL in its header: its summary is stored with the character replaced, and the jobs beside it succeed at their first attempt', async () => {
    const file = await fx.core.files.upload({
      ownerId: fx.ownerId,
      name: 'nul.csv',
      contentType: 'text/csv',
      body: Readable.from(Buffer.from('na\u0000me,value\nx,1\ny,2\n')),
      maxBytes: 1_000_000,
    });
    await fx.startRunner({ concurrency: 50 });
    const csv = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'csv.summary', input: { fileId: file.id, delimiter: ',', header: true } }));
    const echoes = await Promise.all(Array.from({ length: 40 }, (_, index) => fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: index } }))));
    const ids = [csv.job.id, ...echoes.map(({ job }) => job.id)];
    await waitFor('every job to finish', async () => {
      const { count } = await fx.one<{ count: number }>("SELECT count(*)::int AS count FROM jobs WHERE id = ANY($1::uuid[]) AND status IN ('succeeded', 'failed')", [ids]);
      return count === ids.length;
    });
    expect(await fx.core.jobs.get(fx.ownerId, csv.job.id)).toMatchObject({
      status: 'succeeded',
      attempts: 1,
      result: { rows: 2, columns: [{ name: 'na\ufffdme', count: 2, empty: 0 }, { name: 'value', count: 2, empty: 0 }] },
    });
    const { count } = await fx.one<{ count: number }>("SELECT count(*)::int AS count FROM jobs WHERE id = ANY($1::uuid[]) AND status = 'succeeded' AND attempts = 1", [ids]);
    expect(count).toBe(ids.length);
  });

  it('a job past its type\'s timeout fails with a timeout error and frees its slot, even if it ignores its signal', async () => {
    const stubborn = defineProcessor({ ...sleep, timeoutMs: 300 }, async ({ input }) => {
      // Ignores the abort signal on purpose.
      await delay(input.ms);
      return { result: { sleptMs: input.ms } };
    });
    await fx.startRunner({ concurrency: 1 }, { processors: (type) => (type === 'sleep' ? (stubborn as unknown as Processor) : findProcessor(type)) });
    const slow = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 20_000 }, maxAttempts: 1 }));
    const next = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: 'after' } }));
    await waitFor('the slow job to time out', async () => (await statusOf(fx, slow.job.id)) === 'failed', 10_000);
    expect((await fx.core.jobs.get(fx.ownerId, slow.job.id)).error).toBe('the job ran past its type\'s timeout of 300 ms and was stopped');
    // One slot: the echo job can only run once the stubborn one gave it back.
    await waitFor('the next job to run in the freed slot', async () => (await statusOf(fx, next.job.id)) === 'succeeded', 10_000);
  });

  it('the relay sweep leaves a job that is on its way to Redis alone, and hands over one that is lost', async () => {
    // Rows committed without the in-process hand-off, as when addBulk is still in flight (or failed).
    const insert = async () => {
      const id = randomUUID();
      await fx.query(
        "INSERT INTO jobs (id, owner_id, type, input, status, max_attempts, updated_at) VALUES ($1, $2, 'echo', '{}', 'queued', 3, now() - interval '1 minute')",
        [id, fx.ownerId],
      );
      return id;
    };
    const onItsWay = await insert();
    const lost = await insert();
    const first = await fx.core.relay.sweep();
    expect(first).toMatchObject({ pending: 2, requeued: 0 });
    expect(await fx.core.relay.queue.getJob(lost)).toBeUndefined();

    // The hand-off in flight lands; the other never does.
    await fx.core.relay.enqueue([{ id: onItsWay, type: 'echo', priority: 0 }], 'submit');
    const second = await fx.core.relay.sweep();
    expect(second).toMatchObject({ pending: 0, requeued: 1 });
    expect((await fx.core.relay.queue.getJob(lost))?.data).toEqual({ jobId: lost });
    const swept = (await fx.core.metrics?.relayEnqueued.get())?.values.find((value) => value.labels.path === 'sweep');
    expect(swept?.value).toBe(1);
  });
});

describe('job engine: a PostgreSQL outage', () => {
  let postgres: PostgresServer | undefined;
  let fx: EngineFixture | undefined;

  afterEach(async () => {
    await fx?.close();
    await postgres?.destroy();
  });

  it('a result finished while PostgreSQL is away for over a minute is kept and written once it is back', async () => {
    postgres = await startPostgres();
    const shared = await useSharedServices();
    fx = await createEngineFixture({ servers: { databaseUrl: await postgres.createDatabase(), redisUrl: shared.redisUrl, redisPrefix: `{t-${randomUUID()}}` } });
    const current = fx;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const gated = defineProcessor(echo, async ({ input }) => {
      await gate;
      return { result: { payload: input.payload } };
    });
    await current.startRunner({}, { processors: (type) => (type === 'echo' ? (gated as unknown as Processor) : findProcessor(type)) });
    const { job } = await current.core.jobs.submit(submission({ ownerId: current.ownerId, type: 'echo', input: { payload: 'kept' } }));
    await waitFor('the job to run', async () => (await statusOf(current, job.id)) === 'running');

    await postgres.stop();
    release();
    // Longer than any retry window a writer could give itself: the result must wait for the server, however long.
    await delay(65_000);
    await postgres.start();

    await waitFor('the kept result to be written', async () => (await statusOf(current, job.id)) === 'succeeded', 30_000);
    expect(await current.core.jobs.get(current.ownerId, job.id)).toMatchObject({ attempts: 1, result: { payload: 'kept' } });
  }, 150_000);
});
