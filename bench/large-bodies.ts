/**
 * One user's large submits beside another user's small ones, against a running platform
 * (`npm start`). User A sends `--count` echo submits of about 1 MB each (an array of
 * 500,000 zeros: a MiB of small JSON values, what costs PostgreSQL most to store),
 * `--concurrency` at a time; meanwhile user B submits a small echo every 0.5 s and follows
 * each to succeeded. What B sees is the figure: how long its submits take, and how long
 * from submit to succeeded, while A's bodies are being stored.
 *
 *   node -r @swc-node/register bench/large-bodies.ts [--url http://localhost:8080] [--count 16] [--concurrency 4]
 *
 * Each run registers two fresh users (the auth rate limit allows 20 a minute per address).
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

const PASSWORD = 'correct horse battery staple';
const SMALL_EVERY_MS = 500;
const POLL_EVERY_MS = 20;

interface Timed {
  status: number;
  submitMs: number;
  /** Submit to a terminal state; undefined when not followed or not accepted. */
  doneMs?: number;
}

async function json<T>(response: Response): Promise<T> {
  return (await response.json()) as T;
}

async function signUp(base: string, label: string): Promise<string> {
  const email = `${label}-${randomBytes(4).toString('hex')}@example.com`;
  const headers = { 'content-type': 'application/json' };
  const registered = await fetch(`${base}/v1/auth/register`, { method: 'POST', headers, body: JSON.stringify({ email, password: PASSWORD }) });
  if (registered.status !== 202) throw new Error(`register: ${registered.status} ${await registered.text()}`);
  const login = await fetch(`${base}/v1/auth/login`, { method: 'POST', headers, body: JSON.stringify({ email, password: PASSWORD }) });
  const { accessToken } = await json<{ accessToken?: string }>(login);
  if (!accessToken) throw new Error(`login: ${login.status}`);
  return accessToken;
}

async function submit(base: string, token: string, body: string, follow: boolean): Promise<Timed> {
  const started = performance.now();
  const response = await fetch(`${base}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body });
  const job = await json<{ id?: string }>(response);
  const submitMs = performance.now() - started;
  if (!follow || response.status !== 202 || !job.id) return { status: response.status, submitMs };
  for (;;) {
    const view = await json<{ status: string }>(await fetch(`${base}/v1/jobs/${job.id}`, { headers: { authorization: `Bearer ${token}` } }));
    if (['succeeded', 'failed', 'cancelled'].includes(view.status)) return { status: response.status, submitMs, doneMs: performance.now() - started };
    await new Promise((resolve) => setTimeout(resolve, POLL_EVERY_MS));
  }
}

function summary(values: number[]): { min: number; median: number; max: number } | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return { min: Math.round(sorted[0]!), median: Math.round(sorted[Math.floor(sorted.length / 2)]!), max: Math.round(sorted.at(-1)!) };
}

function statuses(results: Timed[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const { status } of results) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { url: { type: 'string', default: 'http://localhost:8080' }, count: { type: 'string', default: '16' }, concurrency: { type: 'string', default: '4' } } });
  const base = values.url.replace(/\/$/, '');
  const count = Number(values.count);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(count) || count < 1) throw new Error('--count must be a positive whole number');
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('--concurrency must be a positive whole number');

  const [heavy, light] = [await signUp(base, 'large-bodies-a'), await signUp(base, 'large-bodies-b')];
  const large = JSON.stringify({ type: 'echo', input: { payload: new Array<number>(500_000).fill(0) } });
  const small = JSON.stringify({ type: 'echo', input: { payload: 'small' } });

  const started = performance.now();
  let sent = 0;
  const heavyResults: Timed[] = [];
  const heavyDone = Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (sent < count) {
        sent += 1;
        heavyResults.push(await submit(base, heavy, large, false));
      }
    }),
  );
  const lightResults: Timed[] = [];
  let heavyFinished = false;
  const lightDone = (async () => {
    while (!heavyFinished) {
      const next = submit(base, light, small, true).then((result) => lightResults.push(result));
      await new Promise((resolve) => setTimeout(resolve, SMALL_EVERY_MS));
      await next;
    }
  })();
  await heavyDone;
  heavyFinished = true;
  await lightDone;

  console.log(
    JSON.stringify(
      {
        largeBodyBytes: large.length,
        wallSeconds: Number(((performance.now() - started) / 1_000).toFixed(1)),
        userA: { statuses: statuses(heavyResults), submitMs: summary(heavyResults.map((result) => result.submitMs)) },
        userB: {
          statuses: statuses(lightResults),
          submitMs: summary(lightResults.map((result) => result.submitMs)),
          submitToDoneMs: summary(lightResults.flatMap((result) => (result.doneMs === undefined ? [] : [result.doneMs]))),
        },
      },
      null,
      2,
    ),
  );
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
