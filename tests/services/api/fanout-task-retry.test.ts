/**
 * A task of a fan-out job retried (by its owner) or replayed (by an operator) on its own.
 * That is allowed only while the job waits for its tasks: once the job has moved on (its
 * reduce step queued or run, or the job failed or cancelled), it has counted the task's
 * outcome, and a task run again would leave the job's counts and result disagreeing. The
 * job itself is retried instead. No worker runs here: a reduce step stays queued.
 */
import { call, makeAdmin, signUp, startApi, type ApiFixture } from './fixture';

interface Job {
  id: string;
  status: string;
  tasks: Record<string, unknown> | null;
}

describe('retrying or replaying one task of a fan-out job', () => {
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

  async function fanOut(count: number, maxFailed: number): Promise<{ jobId: string; taskIds: string[] }> {
    const submitted = await call<Job>(api, '/v1/jobs', { token: user, json: { type: 'echo.batch', input: { count, failurePolicy: { mode: 'tolerate', maxFailed } } } });
    expect(submitted.status).toBe(202);
    const { body: tasks } = await call<{ items: { id: string }[] }>(api, `/v1/jobs/${submitted.body.id}/tasks`, { token: user });
    return { jobId: submitted.body.id, taskIds: tasks.items.map((task) => task.id) };
  }

  async function cancel(jobId: string): Promise<void> {
    expect((await call(api, `/v1/jobs/${jobId}/cancel`, { method: 'POST', token: user })).status).toBe(200);
  }

  const job = async (jobId: string) => (await call<Job>(api, `/v1/jobs/${jobId}`, { token: user })).body;

  it('is allowed while the fan-out job waits for its tasks', async () => {
    const { jobId, taskIds } = await fanOut(2, 1);
    await cancel(taskIds[0] as string);
    expect(await job(jobId)).toMatchObject({ status: 'waiting', tasks: { queued: 1, cancelled: 1 } });

    const retried = await call(api, `/v1/jobs/${taskIds[0]}/retry`, { method: 'POST', token: user });
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ status: 'queued', parentId: jobId });
    expect(await job(jobId)).toMatchObject({ status: 'waiting', tasks: { queued: 2, cancelled: 0 } });

    await cancel(taskIds[0] as string);
    const replayed = await call(api, `/v1/admin/dlq/${taskIds[0]}/replay`, { method: 'POST', token: admin });
    expect(replayed.status).toBe(202);
    expect(await job(jobId)).toMatchObject({ status: 'waiting', tasks: { queued: 2, cancelled: 0 } });
  });

  it('is refused (409) once the fan-out job has queued its reduce step, which counted the task as cancelled', async () => {
    const { jobId, taskIds } = await fanOut(1, 1);
    await cancel(taskIds[0] as string);
    const before = await job(jobId);
    expect(before).toMatchObject({ status: 'queued', tasks: { total: 1, queued: 0, cancelled: 1 } });

    for (const [path, token] of [
      [`/v1/jobs/${taskIds[0]}/retry`, user],
      [`/v1/admin/dlq/${taskIds[0]}/replay`, admin],
    ] as const) {
      const refused = await call(api, path, { method: 'POST', token });
      expect(refused.status).toBe(409);
      expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(refused.body.detail).toContain(`its fan-out job ${jobId} waits for its tasks; that job is queued`);
      expect(refused.body.detail).toMatch(/(Retry|Replay) the fan-out job itself/);
    }
    expect(await job(taskIds[0] as string)).toMatchObject({ status: 'cancelled' });
    expect(await job(jobId)).toEqual(before);
  });

  it('is refused (409) once the fan-out job is cancelled; retrying the job itself requeues the task', async () => {
    const { jobId, taskIds } = await fanOut(2, 0);
    await cancel(jobId);
    expect(await job(jobId)).toMatchObject({ status: 'cancelled', tasks: { queued: 0, cancelled: 2 } });

    const refused = await call(api, `/v1/jobs/${taskIds[1]}/retry`, { method: 'POST', token: user });
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toContain('that job is cancelled');
    expect(await job(jobId)).toMatchObject({ status: 'cancelled', tasks: { queued: 0, cancelled: 2 } });

    expect((await call(api, `/v1/jobs/${jobId}/retry`, { method: 'POST', token: user })).status).toBe(202);
    expect(await job(jobId)).toMatchObject({ status: 'waiting', tasks: { queued: 2, cancelled: 0 } });
  });

  it('still says a task that is not failed or cancelled cannot be retried, whatever its fan-out job is', async () => {
    const { taskIds } = await fanOut(1, 0);
    const refused = await call(api, `/v1/jobs/${taskIds[0]}/retry`, { method: 'POST', token: user });
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toBe('The job is queued.');
  });
});
