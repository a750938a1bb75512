import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { LoadRequest, LoadResult } from './load-generator';

/** What every bench run submits: the cheapest job, so the platform's own cost shows. */
export const ECHO_BODY = JSON.stringify({ type: 'echo', input: { payload: { bench: true } } });

/**
 * The worker's concurrency for the echo workload. Echo jobs take a few milliseconds (most of
 * it waiting for the batched state write), so 20 slots carry several thousand jobs/s, and
 * with every slot busy BullMQ hands each freed slot its next job inside the same
 * moveToFinished script. With idle slots (200) each job is fetched by a moveToActive script
 * call of its own: 2.56 instead of 2.08 script calls per job, measured on Redis's
 * commandstats. The platform's default (50) is for mixed workloads with long jobs.
 */
export const ECHO_WORKER_CONCURRENCY = 20;

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
