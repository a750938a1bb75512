import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { LoadRequest, LoadResult } from './load-generator';

/** What every bench run submits: the cheapest job, so the platform's own cost shows. */
export const ECHO_BODY = JSON.stringify({ type: 'echo', input: { payload: { bench: true } } });

/**
 * The worker's concurrency for the echo workload. An echo job holds its slot for a few
 * milliseconds, nearly all of it waiting for its batched run-state read and state write, so
 * the slots, not the worker's CPU, bound how fast one worker drains: slots needed ≈ jobs/s ×
 * the time a job holds one. Measured with `-- --quick` on a 2 × Xeon box (submits/s → end to
 * end jobs/s): 20 slots 5,093 → 2,521; 50: 4,135 → 3,369; 100: 4,105 → 4,110; 200: 4,090 →
 * 4,152. Slots beyond that sit idle between jobs, and each idle slot fetches its next job
 * with a moveToActive script call of its own instead of inside moveToFinished (Redis
 * commandstats: 2.05 script calls per job at 100, 2.11 at 200, 2.56 at 200 on a slower box).
 * The platform's default (50) is for mixed workloads with long jobs.
 */
export const ECHO_WORKER_CONCURRENCY = 100;

/** Runs the load generator in its own process, so its CPU is not charged to the API. */
export async function runLoad(request: LoadRequest): Promise<LoadResult> {
  const script = path.join(__dirname, 'load-generator.js');
  const { stdout } = await promisify(execFile)(process.execPath, [script, JSON.stringify(request)], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout) as LoadResult;
}

/** Registers a fresh bench user and returns its access token. */
export async function accessToken(apiUrl: string): Promise<string> {
  const credentials = { email: `bench-${Date.now()}@example.com`, password: 'bench password 123' };
  const post = (route: string) => fetch(`${apiUrl}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(credentials) });
  const registered = await post('/v1/auth/register');
  if (registered.status !== 201) throw new Error(`register: ${registered.status} ${await registered.text()}`);
  const login = await post('/v1/auth/login');
  if (!login.ok) throw new Error(`login: ${login.status} ${await login.text()}`);
  return ((await login.json()) as { accessToken: string }).accessToken;
}
