import { WorkerEnvSchema, parseEnv } from '../../../services/contract';
import { startWorkerProcess, type WorkerProcess } from '../../../services/worker/main';
import { findFreePort } from '../../harness/free-port';
import type { ApiFixture } from './fixture';

/** A real worker process on the API fixture's servers and object store. */
export async function startWorkerFor(api: Pick<ApiFixture, 'env'>, extra: Record<string, string> = {}): Promise<WorkerProcess> {
  const env = parseEnv(
    {
      DATABASE_URL: api.env.DATABASE_URL,
      REDIS_URL: api.env.REDIS_URL,
      QUEUE_PREFIX: api.env.QUEUE_PREFIX,
      OBJECT_STORE_DIR: api.env.OBJECT_STORE_DIR,
      WORKER_METRICS_PORT: String(await findFreePort()),
      WORKER_CONCURRENCY: '4',
      LOG_LEVEL: 'silent',
      ...extra,
    },
    WorkerEnvSchema,
  );
  return startWorkerProcess(env, { exitOnSignal: false });
}
