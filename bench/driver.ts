import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import type { LoadRequest, LoadResult } from './load-generator';

/** What every bench run submits: the cheapest job, so the platform's own cost shows. */
export const ECHO_BODY = JSON.stringify({ type: 'echo', input: { payload: { bench: true } } });

/** Users the load speaks for, in turn: a per-user rate limit at its default never binds. */
export const BENCH_USERS = 8;

/**
 * Runs a load generator in its own process, so its CPU is not charged to the API: the
 * bench's own (raw keep-alive sockets, prebuilt requests) or autocannon.
 */
export async function runLoad(request: LoadRequest, generator: 'raw' | 'autocannon' = 'raw'): Promise<LoadResult> {
  const script = path.join(__dirname, generator === 'raw' ? 'load-generator.js' : 'autocannon-load.js');
  const { stdout } = await promisify(execFile)(process.execPath, [script, JSON.stringify(request)], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout) as LoadResult;
}

/** Registers `count` fresh bench users and returns their access tokens. */
export async function accessTokens(apiUrl: string, count = BENCH_USERS): Promise<string[]> {
  const tokens: string[] = [];
  for (let index = 0; index < count; index += 1) {
    const credentials = { email: `bench-${Date.now()}-${index}@example.com`, password: 'bench password 123' };
    const post = (route: string) => fetch(`${apiUrl}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(credentials) });
    const registered = await post('/v1/auth/register');
    // Registration answers 202 whether or not the address is taken; revisions older than that, which bench:compare may run, answer 201.
    if (registered.status !== 202 && registered.status !== 201) throw new Error(`register: ${registered.status} ${await registered.text()}`);
    const login = await post('/v1/auth/login');
    if (!login.ok) throw new Error(`login: ${login.status} ${await login.text()}`);
    tokens.push(((await login.json()) as { accessToken: string }).accessToken);
  }
  return tokens;
}

/** Jobs by status in the platform's database. */
export async function statusCounts(databaseUrl: string): Promise<Record<string, number>> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ status: string; n: string }>('SELECT status, count(*) AS n FROM jobs GROUP BY status');
    return Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
  } finally {
    await client.end();
  }
}
