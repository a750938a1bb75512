import { call, makeAdmin, signUp, startApi, type ApiFixture } from './fixture';

describe('admin routes', () => {
  let api: ApiFixture;
  let user: string;
  let admin: string;

  beforeAll(async () => {
    api = await startApi();
    user = (await signUp(api)).token;
    const candidate = await signUp(api);
    admin = await makeAdmin(api, candidate.userId);
  });

  afterAll(async () => {
    await api.close();
  });

  it.each([
    ['GET', '/v1/admin/queues'],
    ['POST', '/v1/admin/queues/pause'],
    ['POST', '/v1/admin/queues/resume'],
    ['GET', '/v1/admin/dlq'],
    ['POST', '/v1/admin/dlq/00000000-0000-4000-8000-000000000000/replay'],
  ])('%s %s is 403 for a user and 401 without a token', async (method, path) => {
    const forbidden = await call(api, path, { method, token: user });
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await call(api, path, { method })).status).toBe(401);
  });

  it('shows queue statistics, pauses and resumes, and lists the dead-letter set to an admin', async () => {
    await call(api, '/v1/jobs', { token: user, json: { type: 'echo', input: {} } });
    const stats = await call(api, '/v1/admin/queues', { token: admin });
    expect(stats.status).toBe(200);
    expect(stats.body).toMatchObject({ queue: expect.any(String), paused: false, counts: expect.any(Object), statuses: expect.objectContaining({ queued: expect.any(Number) }) });

    expect((await call(api, '/v1/admin/queues/pause', { method: 'POST', token: admin })).status).toBe(204);
    expect((await call(api, '/v1/admin/queues', { token: admin })).body.paused).toBe(true);
    expect((await call(api, '/v1/admin/queues/resume', { method: 'POST', token: admin })).status).toBe(204);
    expect((await call(api, '/v1/admin/queues', { token: admin })).body.paused).toBe(false);

    const dlq = await call(api, '/v1/admin/dlq?limit=10', { token: admin });
    expect(dlq.status).toBe(200);
    expect(dlq.body).toEqual({ items: [], nextCursor: null });
    expect((await call(api, '/v1/admin/dlq?limit=0', { token: admin })).status).toBe(400);
    expect((await call(api, '/v1/admin/dlq/00000000-0000-4000-8000-000000000000/replay', { method: 'POST', token: admin })).status).toBe(404);
  });

  it('replays a fan-out job its policy failed as its owner retries it: the failed tasks run again, not its reduce step', async () => {
    const { body: job } = await call<{ id: string }>(api, '/v1/jobs', { token: user, json: { type: 'echo.batch', input: { count: 3 } } });
    const { body: tasks } = await call<{ items: { id: string }[] }>(api, `/v1/jobs/${job.id}/tasks`, { token: user });
    // fail-fast: one task cancelled fails the job and cancels the others.
    expect((await call(api, `/v1/jobs/${tasks.items[0]?.id}/cancel`, { method: 'POST', token: user })).status).toBe(200);
    expect((await call(api, `/v1/jobs/${job.id}`, { token: user })).body).toMatchObject({ status: 'failed', tasks: { cancelled: 3 } });

    const replayed = await call(api, `/v1/admin/dlq/${job.id}/replay`, { method: 'POST', token: admin });
    expect(replayed.status).toBe(202);
    expect(replayed.body).toMatchObject({ status: 'waiting', tasks: { total: 3, queued: 3, cancelled: 0 } });
    expect((await call(api, `/v1/jobs/${job.id}`, { token: user })).body).toMatchObject({ status: 'waiting', tasks: { queued: 3 } });

    // The audit trail says an operator replayed it, not that its owner retried it.
    const { rows: events } = await api.db.query<{ from_status: string; to_status: string; detail: string }>(
      'SELECT from_status, to_status, detail FROM job_events WHERE job_id = $1 ORDER BY id DESC LIMIT 1',
      [job.id],
    );
    expect(events).toEqual([{ from_status: 'failed', to_status: 'waiting', detail: 'replayed from the dead-letter set: 3 failed or cancelled tasks queued again' }]);
  });

  it('says a malformed replay id names no job (not "no such admin")', async () => {
    const response = await call(api, '/v1/admin/dlq/not-an-id/replay', { method: 'POST', token: admin });
    expect(response.status).toBe(404);
    expect(response.body.detail).toBe('no such job');
  });
});
