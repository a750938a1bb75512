import type { WorkerProcess } from '../../../services/worker/main';
import { call, signUp, startApi, type ApiFixture } from './fixture';
import { startWorkerFor } from './worker-process';

describe('submit over HTTP, processed by a worker', () => {
  let api: ApiFixture;
  let worker: WorkerProcess;

  beforeAll(async () => {
    api = await startApi();
    worker = await startWorkerFor(api);
  });

  afterAll(async () => {
    await worker?.stop();
    await api?.close();
  });

  it('runs an echo job to success and serves its result', async () => {
    const { token } = await signUp(api);
    const submitted = await call<{ id: string }>(api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: { answer: 42, list: [1, 'two'] } } } });
    expect(submitted.status).toBe(202);
    let job: Record<string, unknown>;
    do {
      job = (await call(api, `/v1/jobs/${submitted.body.id}`, { token })).body;
      if (job.status === 'queued' || job.status === 'running') await new Promise((resolve) => setTimeout(resolve, 50));
    } while (job.status === 'queued' || job.status === 'running');
    expect(job).toMatchObject({ status: 'succeeded', attempts: 1, result: { payload: { answer: 42, list: [1, 'two'] } }, error: null });
    expect(job.finishedAt).toEqual(expect.any(String));

    const stream = await fetch(`${api.baseUrl}/v1/jobs/${submitted.body.id}/events`, { headers: { authorization: `Bearer ${token}` } });
    const transitions = [...(await stream.text()).matchAll(/^data: (.*)$/gm)].map((match) => (JSON.parse(match[1] ?? '{}') as { to: string }).to);
    expect(transitions).toEqual(expect.arrayContaining(['queued', 'succeeded']));
    expect(transitions.at(-1)).toBe('succeeded');
  });
});
