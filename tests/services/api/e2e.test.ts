import { WorkerEnvSchema, parseEnv } from '../../../services/contract';
import { startWorkerProcess, type WorkerProcess } from '../../../services/worker/main';
import { findFreePort } from '../../harness/free-port';
import { call, signUp, startApi, type ApiFixture } from './fixture';

describe('submit over HTTP, processed by a worker', () => {
  let api: ApiFixture;
  let worker: WorkerProcess;

  beforeAll(async () => {
    api = await startApi();
    const env = parseEnv(
      {
        DATABASE_URL: api.env.DATABASE_URL,
        REDIS_URL: api.env.REDIS_URL,
        QUEUE_PREFIX: api.env.QUEUE_PREFIX,
        OBJECT_STORE_DIR: api.env.OBJECT_STORE_DIR,
        WORKER_METRICS_PORT: String(await findFreePort()),
        WORKER_CONCURRENCY: '4',
        LOG_LEVEL: 'silent',
      },
      WorkerEnvSchema,
    );
    worker = await startWorkerProcess(env, { exitOnSignal: false });
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
