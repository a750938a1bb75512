/**
 * Jobs of a type that shares queue entries (echo: jobsPerQueueEntry 10). What happens to
 * one job of an entry stays that job's: a retry, a cancel, a shutdown, an entry Redis lost.
 * Entries are made here through the relay's submit path over rows written directly, so
 * which jobs share one does not hang on timing.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { echo } from '../../../services/contract';
import { pruneSharedEntries, readJobStates } from '../../../services/core/queue/job-states';
import { SHARED_ENTRY_ID_PREFIX, sharedEntriesKey } from '../../../services/core/queue/keys';
import { findProcessor } from '../../../services/worker/jobs';
import { defineProcessor, type Processor } from '../../../services/worker/processor';
import { createEngineFixture, queueSharedEntry, statusOf, untilAborted, waitFor, type EngineFixture } from './fixture';

describe('shared queue entries', () => {
  let fx: EngineFixture;

  beforeEach(async () => {
    fx = await createEngineFixture();
  });
  afterEach(async () => {
    await fx?.close();
  });

  const sharedEntry = (payloads: string[], options?: { minutesAgo?: number }) => queueSharedEntry(fx, payloads, options);

  const attemptsOf = async (ids: string[]) =>
    Object.fromEntries((await fx.query<{ id: string; attempts: number }>('SELECT id, attempts FROM jobs WHERE id = ANY($1::uuid[])', [ids])).map((row) => [row.id, row.attempts]));
  const mapSize = () => fx.core.redis.client.hlen(sharedEntriesKey(fx.env.QUEUE_PREFIX));
  const statesOf = async (ids: string[]) => [...(await readJobStates(fx.core.redis.client, fx.env.QUEUE_PREFIX, ids)).values()];
  const withEcho = (processor: Processor) => (type: string) => (type === 'echo' ? processor : findProcessor(type));

  it('runs every job of the entry once; the map forgets them when the entry completes', async () => {
    const ids = await sharedEntry(['a', 'b', 'c', 'd']);
    expect(await mapSize()).toBe(4);
    await fx.startRunner();
    await waitFor('every job to succeed', async () => (await Promise.all(ids.map((id) => statusOf(fx, id)))).every((status) => status === 'succeeded'));
    expect(await attemptsOf(ids)).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
    expect((await fx.core.jobs.get(fx.ownerId, ids[2] as string)).result).toEqual({ payload: 'c' });
    await waitFor('the map to forget the entry\'s jobs', async () => (await mapSize()) === 0);
    const { count } = await fx.one<{ count: number }>("SELECT count(*)::int AS count FROM job_events WHERE job_id = ANY($1::uuid[]) AND to_status = 'succeeded'", [ids]);
    expect(count).toBe(4);
  });

  it('retries a failing job in an entry of its own after its backoff; the jobs beside it succeed at their first attempt', async () => {
    const failedOnce = new Set<string>();
    const flaky = defineProcessor(echo, async ({ input, jobId }) => {
      if (input.payload === 'flaky' && !failedOnce.has(jobId)) {
        failedOnce.add(jobId);
        throw new Error('a transient fault');
      }
      return { result: { payload: input.payload } };
    });
    const ids = await sharedEntry(['ok', 'flaky', 'ok']);
    const flakyId = ids[1] as string;
    await fx.startRunner({}, { processors: withEcho(flaky as unknown as Processor) });
    await waitFor('the flaky job to wait out its backoff in an entry of its own', async () => {
      const entry = await fx.core.relay.queue.getJob(flakyId);
      return entry !== undefined && (await entry.isDelayed()) && entry.data;
    }).then((data) => expect(data).toEqual({ jobId: flakyId }));
    await waitFor('every job to succeed', async () => (await Promise.all(ids.map((id) => statusOf(fx, id)))).every((status) => status === 'succeeded'));
    expect(await attemptsOf(ids)).toEqual({ [ids[0] as string]: 1, [flakyId]: 2, [ids[2] as string]: 1 });
    expect((await fx.core.jobs.get(fx.ownerId, flakyId)).error).toBeNull();
  });

  it('skips a job cancelled while its entry waits; the others run', async () => {
    const ids = await sharedEntry(['keep', 'drop', 'keep']);
    const dropped = ids[1] as string;
    expect((await fx.core.jobs.cancel(fx.ownerId, dropped)).status).toBe('cancelled');
    // The entry still carries the job: it cannot be taken out of a shared entry, and the delivery read finds it cancelled.
    expect(await fx.core.relay.queue.getJob(`${SHARED_ENTRY_ID_PREFIX}${ids[0]}`)).toBeDefined();
    await fx.startRunner();
    await waitFor('the others to succeed', async () => (await statusOf(fx, ids[0] as string)) === 'succeeded' && (await statusOf(fx, ids[2] as string)) === 'succeeded');
    await delay(200);
    expect(await statusOf(fx, dropped)).toBe('cancelled');
    const events = await fx.query<{ to_status: string }>('SELECT to_status FROM job_events WHERE job_id = $1 ORDER BY id', [dropped]);
    expect(events.map((event) => event.to_status)).not.toContain('running');
  });

  it('cancelling a running job of the entry stops that job alone; the entry completes once the others are done', async () => {
    let aborted = false;
    const holdOne = defineProcessor(echo, ({ input, signal }) => {
      if (input.payload !== 'hold') return Promise.resolve({ result: { payload: input.payload } });
      return untilAborted(signal, () => (aborted = true));
    });
    const ids = await sharedEntry(['hold', 'quick', 'quick']);
    const held = ids[0] as string;
    await fx.startRunner({}, { processors: withEcho(holdOne as unknown as Processor) });
    await waitFor('the held job to run and the others to succeed', async () => (await statusOf(fx, held)) === 'running' && (await statusOf(fx, ids[2] as string)) === 'succeeded');
    expect((await fx.core.jobs.cancel(fx.ownerId, held)).status).toBe('cancelled');
    await waitFor('the held job to see its signal abort', async () => aborted);
    // The worker forgets the entry's jobs as its processor ends; BullMQ completes (and removes) the entry right after.
    await waitFor('the map to forget the entry\'s jobs', async () => (await mapSize()) === 0);
    await waitFor('the entry to complete', async () => (await fx.core.relay.queue.getJob(`${SHARED_ENTRY_ID_PREFIX}${held}`)) === undefined);
    expect(await Promise.all(ids.map((id) => statusOf(fx, id)))).toEqual(['cancelled', 'succeeded', 'succeeded']);
  });

  it('a shutdown past its grace gives each running job of the entry an entry of its own, attempt not spent', async () => {
    const holding = defineProcessor(echo, ({ signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true })));
    const ids = await sharedEntry(['x', 'y']);
    const runner = await fx.startRunner({}, { processors: withEcho(holding as unknown as Processor) });
    await waitFor('both jobs to run', async () => (await Promise.all(ids.map((id) => statusOf(fx, id)))).every((status) => status === 'running'));
    await runner.stop(100);

    expect(await Promise.all(ids.map((id) => statusOf(fx, id)))).toEqual(['queued', 'queued']);
    expect(await attemptsOf(ids)).toEqual(Object.fromEntries(ids.map((id) => [id, 0])));
    for (const id of ids) expect((await fx.core.relay.queue.getJob(id))?.data).toEqual({ jobId: id });
    expect(await mapSize()).toBe(0);

    await fx.startRunner();
    await waitFor('both jobs to succeed on the next worker', async () => (await Promise.all(ids.map((id) => statusOf(fx, id)))).every((status) => status === 'succeeded'));
    expect(await attemptsOf(ids)).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
  });

  it('an entry Redis lost: the sweep hands each still-queued job over in an entry of its own, after a second look', async () => {
    const ids = await sharedEntry(['p', 'q', 'r'], { minutesAgo: 5 });
    await fx.core.jobs.cancel(fx.ownerId, ids[2] as string);
    expect(await statesOf(ids)).toEqual(['held', 'held', 'held']);
    const first = await fx.core.relay.sweep();
    expect(first).toMatchObject({ pending: 0, requeued: 0 });

    await fx.core.relay.queue.remove(`${SHARED_ENTRY_ID_PREFIX}${ids[0]}`);
    expect(await statesOf(ids)).toEqual(['missing', 'missing', 'missing']);
    const noted = await fx.core.relay.sweep();
    expect(noted).toMatchObject({ pending: 2, requeued: 0 });
    const repaired = await fx.core.relay.sweep();
    expect(repaired).toMatchObject({ pending: 0, requeued: 2 });
    for (const id of ids.slice(0, 2)) expect((await fx.core.relay.queue.getJob(id))?.data).toEqual({ jobId: id });
    // The map's fields of the lost entry went with the sweep's prune.
    expect(await mapSize()).toBe(0);

    await fx.startRunner();
    await waitFor('the handed-over jobs to succeed', async () => (await statusOf(fx, ids[0] as string)) === 'succeeded' && (await statusOf(fx, ids[1] as string)) === 'succeeded');
    expect(await statusOf(fx, ids[2] as string)).toBe('cancelled');
  });

  it('prunes map fields of entries that are done, and keeps those of entries still waiting', async () => {
    const waiting = await sharedEntry(['w1', 'w2']);
    const key = sharedEntriesKey(fx.env.QUEUE_PREFIX);
    // Fields whose entry failed for good or went (their worker ended before it forgot them).
    await fx.core.redis.client.hset(key, randomUUID(), `${SHARED_ENTRY_ID_PREFIX}${randomUUID()}`, randomUUID(), `${SHARED_ENTRY_ID_PREFIX}${randomUUID()}`);
    expect(await mapSize()).toBe(4);
    let cursor = '0';
    let pruned = 0;
    do {
      const page = await pruneSharedEntries(fx.core.redis.client, fx.env.QUEUE_PREFIX, cursor, 1);
      cursor = page.cursor;
      pruned += page.pruned;
    } while (cursor !== '0');
    expect(pruned).toBe(2);
    expect((await fx.core.redis.client.hkeys(key)).sort()).toEqual([...waiting].sort());
  });
});
