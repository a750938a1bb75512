import { ConflictError, NotFoundError, ValidationError } from '../../../services/core/errors';
import { createEngineFixture, submission, waitFor, type EngineFixture } from './fixture';

describe('job engine: submit', () => {
  let fx: EngineFixture;

  beforeAll(async () => {
    fx = await createEngineFixture();
  });
  afterAll(async () => {
    await fx?.close();
  });

  it('runs an echo job from submit to succeeded, with its audit trail', async () => {
    await fx.startRunner();
    const { job, created } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: { hello: 'world' } }, requestId: 'req-1' }));
    expect(created).toBe(true);
    expect(job).toMatchObject({ type: 'echo', status: 'queued', attempts: 0, maxAttempts: 3, priority: 0 });

    const done = await waitFor('echo to succeed', async () => {
      const view = await fx.core.jobs.get(fx.ownerId, job.id);
      return view.status === 'succeeded' && view;
    });
    expect(done).toMatchObject({ result: { payload: { hello: 'world' } }, attempts: 1, progress: 100, error: null });
    expect(done.startedAt).not.toBeNull();
    expect(done.finishedAt).not.toBeNull();

    const events = await fx.core.jobs.events(fx.ownerId, job.id);
    expect(events.map((event) => [event.from, event.to])).toEqual([
      [null, 'queued'],
      ['queued', 'running'],
      ['running', 'succeeded'],
    ]);
    const { request_id: requestId } = await fx.one<{ request_id: string }>('SELECT request_id FROM jobs WHERE id = $1', [job.id]);
    expect(requestId).toBe('req-1');
  });

  it('leaves nothing of a succeeded job in Redis: its queue entry goes as it completes', async () => {
    await fx.startRunner();
    const jobs = await Promise.all(Array.from({ length: 5 }, (_, index) => fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: index } }))));
    const ids = jobs.map(({ job }) => job.id);
    await waitFor('the echoes to succeed', async () => {
      const views = await Promise.all(ids.map((id) => fx.core.jobs.get(fx.ownerId, id)));
      return views.every((view) => view.status === 'succeeded');
    });
    await waitFor('their queue entries to go', async () => (await Promise.all(ids.map((id) => fx.core.relay.queue.getJob(id)))).every((entry) => entry === undefined));
    expect(await fx.core.relay.queue.getJobCounts('completed')).toEqual({ completed: 0 });
  });

  it('returns the same job for a repeated idempotency key and body, and 409 for another body', async () => {
    const request = { ownerId: fx.ownerId, type: 'sleep', input: { ms: 1 }, idempotencyKey: 'key-1' };
    const first = await fx.core.jobs.submit(submission(request));
    const again = await fx.core.jobs.submit(submission({ ...request, input: { ms: 1 } }));
    expect(first.created).toBe(true);
    expect(again).toMatchObject({ created: false, job: { id: first.job.id } });
    await expect(fx.core.jobs.submit(submission({ ...request, input: { ms: 2 } }))).rejects.toBeInstanceOf(ConflictError);

    // The key is per owner: another user may use it.
    const otherOwner = await fx.createUser();
    const theirs = await fx.core.jobs.submit(submission({ ...request, ownerId: otherOwner }));
    expect(theirs.created).toBe(true);
    expect(theirs.job.id).not.toBe(first.job.id);
  });

  it('resolves concurrent submits of one key to one job', async () => {
    const request = { ownerId: fx.ownerId, type: 'echo', input: { payload: 1 }, idempotencyKey: 'key-concurrent' };
    const results = await Promise.all(Array.from({ length: 10 }, () => fx.core.jobs.submit(submission(request))));
    expect(new Set(results.map((result) => result.job.id)).size).toBe(1);
    expect(results.filter((result) => result.created)).toHaveLength(1);
  });

  it('gives jobs time-ordered ids (UUIDv7), so new rows land at the right edge of the primary key', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      ids.push((await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 1 } }))).job.id);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect([...ids].sort()).toEqual(ids);
    // PostgreSQL's uuid ordering agrees, which is what the B-tree uses.
    const rows = await fx.query<{ id: string }>('SELECT id FROM jobs WHERE id = ANY ($1::uuid[]) ORDER BY id', [ids]);
    expect(rows.map((row) => row.id)).toEqual(ids);
  });

  it('batches 100 concurrent submits into rows of their own, each caller getting its own job', async () => {
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, index) => fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: index } }))),
    );
    const ids = results.map((result) => result.job.id);
    expect(new Set(ids).size).toBe(100);
    results.forEach((result, index) => expect(result.job.input).toEqual({ payload: index }));
    const rows = await fx.query<{ id: string; input: { payload: number } }>('SELECT id, input FROM jobs WHERE id = ANY($1::uuid[])', [ids]);
    expect(rows).toHaveLength(100);
    const byId = new Map(rows.map((row) => [row.id, row.input.payload]));
    results.forEach((result, index) => expect(byId.get(result.job.id)).toBe(index));
    await waitFor('all 100 to succeed', async () => {
      const { count } = await fx.one<{ count: number }>("SELECT count(*)::int AS count FROM jobs WHERE id = ANY($1::uuid[]) AND status = 'succeeded'", [ids]);
      return count === 100;
    });
  });

  it('admits only what the contract\'s body schema admits, validates internal submits itself, and stores nothing it refuses', async () => {
    const { count: before } = await fx.one<{ count: number }>('SELECT count(*)::int AS count FROM jobs');
    // Client submissions reach the use case only through SubmitJobBody: unknown and internal types, bad input and bad envelopes stop there.
    expect(() => submission({ ownerId: fx.ownerId, type: 'nope', input: {} })).toThrow();
    expect(() => submission({ ownerId: fx.ownerId, type: 'email.send', input: { to: 'a@b.test', subject: 's', text: 't' } })).toThrow();
    expect(() => submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: -1 } })).toThrow();
    expect(() => submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 1 }, maxAttempts: 99 })).toThrow();
    await expect(fx.core.jobs.submitInternal({ ownerId: fx.ownerId, type: 'nope', input: {} })).rejects.toMatchObject({
      name: 'ValidationError',
      issues: [{ field: 'type' }],
    });
    await expect(fx.core.jobs.submitInternal({ ownerId: fx.ownerId, type: 'sleep', input: { ms: -1 } })).rejects.toMatchObject({
      issues: [{ field: 'input.ms' }],
    });
    // The table's constraints stand behind internal callers that pass an envelope out of range.
    await expect(fx.core.jobs.submitInternal({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 1 }, maxAttempts: 99 })).rejects.toBeInstanceOf(ValidationError);
    await expect(
      fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'file.checksum', input: { fileId: '6f1c1c2e-7c57-4c8e-9d7e-5a0f0f0f0f0f' } })),
    ).rejects.toBeInstanceOf(NotFoundError);
    const { count: after } = await fx.one<{ count: number }>('SELECT count(*)::int AS count FROM jobs');
    expect(after).toBe(before);
  });

  it('accepts internal types through submitInternal', async () => {
    const { job } = await fx.core.jobs.submitInternal({ ownerId: fx.ownerId, type: 'email.send', input: { to: 'a@b.test', subject: 's', text: 't' } });
    expect(job).toMatchObject({ type: 'email.send', maxAttempts: 5 });
  });

  it('lists the owner\'s jobs newest first with an opaque cursor', async () => {
    const owner = await fx.createUser();
    const submitted: string[] = [];
    for (let index = 0; index < 5; index += 1) {
      submitted.push((await fx.core.jobs.submit(submission({ ownerId: owner, type: 'echo', input: { payload: index } }))).job.id);
    }
    const first = await fx.core.jobs.list(owner, { limit: 2 });
    const second = await fx.core.jobs.list(owner, { limit: 2, cursor: first.nextCursor ?? undefined });
    const third = await fx.core.jobs.list(owner, { limit: 2, cursor: second.nextCursor ?? undefined });
    expect([...first.items, ...second.items, ...third.items].map((job) => job.id)).toEqual(submitted.reverse());
    expect(third.nextCursor).toBeNull();
    await expect(fx.core.jobs.list(owner, { limit: 2, cursor: 'garbage' })).rejects.toBeInstanceOf(ValidationError);
    await expect(fx.core.jobs.get(fx.ownerId, submitted[0] as string)).rejects.toBeInstanceOf(NotFoundError);
  });
});
