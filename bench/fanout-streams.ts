import { Client } from 'pg';
import { accessTokens } from './driver';
import { startBenchPlatform, type BenchPlatform } from './platform';

/**
 * Fan-out and live status, measured on the platform as `npm start` runs it:
 * - a job of TASKS echo tasks, submit to the parent's success, beside TASKS independent
 *   echo jobs submitted over HTTP in the same run;
 * - STREAMS open event streams (STREAM_USERS users, STREAMS_PER_USER each) while echo jobs
 *   are submitted at RATE/s: delivery latency of `succeeded` events from the state change
 *   the worker reported to the client, and PostgreSQL transactions/s beside the same load
 *   with one stream open.
 */

const TASKS = 10_000;
const STREAM_USERS = 100;
const STREAMS_PER_USER = 10;
const RATE = 500;

export interface FanOutResult {
  independentSeconds: number;
  independentPerSecond: number;
  fanOutSeconds: number;
  fanOutPerSecond: number;
}

export interface StreamsResult {
  streams: number;
  rate: number;
  seconds: number;
  delivered: number;
  latencyMs: { p50: number; p99: number; max: number };
  transactionsPerSecond: { oneStream: number; allStreams: number };
}

async function scalar(databaseUrl: string, sql: string, values: unknown[] = []): Promise<number> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(sql, values);
    return Number(rows[0]?.n ?? 0);
  } finally {
    await client.end();
  }
}

async function submit(apiUrl: string, token: string, body: unknown): Promise<string> {
  const response = await fetch(`${apiUrl}/v1/jobs`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (response.status !== 202) {
    // The limits in force say why a submit was refused (the bench sets them far above its load).
    const limits = [...response.headers].filter(([name]) => /^(ratelimit-|retry-after)/i.test(name)).map(([name, value]) => `${name}: ${value}`);
    throw new Error(`submit: ${response.status} ${await response.text()}${limits.length > 0 ? ` (${limits.join(', ')})` : ''}`);
  }
  return ((await response.json()) as { id: string }).id;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function measureFanOut(platform: BenchPlatform): Promise<FanOutResult> {
  // The users take turns, as in the sustained run: one user alone would meet the per-user submit limit on a fast machine.
  const tokens = await accessTokens(platform.apiUrl);
  const [token] = tokens;
  if (!token) throw new Error('bench: no token');
  const succeededEchoes = () => scalar(platform.databaseUrl, "SELECT count(*) AS n FROM jobs WHERE type = 'echo' AND parent_id IS NULL AND status = 'succeeded'");
  const before = await succeededEchoes();
  const independentStart = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < TASKS) {
        next += 1;
        await submit(platform.apiUrl, tokens[next % tokens.length] as string, { type: 'echo', input: { payload: { bench: true } } });
      }
    }),
  );
  await until('the independent jobs', async () => (await succeededEchoes()) - before >= TASKS);
  const independentSeconds = (performance.now() - independentStart) / 1_000;

  const fanOutStart = performance.now();
  const parentId = await submit(platform.apiUrl, token, { type: 'echo.batch', input: { count: TASKS, payload: { bench: true } } });
  await until('the fan-out job', async () => (await scalar(platform.databaseUrl, "SELECT count(*) AS n FROM jobs WHERE id = $1 AND status = 'succeeded'", [parentId])) === 1);
  const fanOutSeconds = (performance.now() - fanOutStart) / 1_000;
  return { independentSeconds, independentPerSecond: TASKS / independentSeconds, fanOutSeconds, fanOutPerSecond: TASKS / fanOutSeconds };
}

/** An event stream that records when each `succeeded` event arrived against when its state change happened. */
function openStream(apiUrl: string, token: string, latencies: number[], signal: AbortSignal): Promise<void> {
  return fetch(`${apiUrl}/v1/jobs/events`, { headers: { authorization: `Bearer ${token}` }, signal }).then(async (response) => {
    if (response.status !== 200 || !response.body) throw new Error(`stream: ${response.status}`);
    void (async () => {
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        for await (const chunk of response.body as ReadableStream<Uint8Array>) {
          buffer += decoder.decode(chunk, { stream: true });
          let boundary: number;
          while ((boundary = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, boundary);
            buffer = buffer.slice(boundary + 2);
            const data = block.split('\n').find((line) => line.startsWith('data: '));
            if (!data || !data.includes('"to":"succeeded"')) continue;
            latencies.push(Date.now() - Date.parse((JSON.parse(data.slice(6)) as { at: string }).at));
          }
        }
      } catch {
        // aborted at the end of the phase
      }
    })();
  });
}

async function paced(platform: BenchPlatform, tokens: string[], seconds: number): Promise<number> {
  const databaseTransactions = () => scalar(platform.databaseUrl, 'SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()');
  const before = await databaseTransactions();
  const started = performance.now();
  const pending: Promise<unknown>[] = [];
  // A refused submit ends the phase through Promise.all below; left unhandled until then, it
  // would end the process before the platform is stopped.
  let failed = false;
  for (let tick = 0; tick < seconds * 100 && !failed; tick += 1) {
    for (let index = 0; index < RATE / 100; index += 1) {
      const submitted = submit(platform.apiUrl, tokens[(tick * 5 + index) % tokens.length] as string, { type: 'echo', input: {} });
      submitted.catch(() => {
        failed = true;
      });
      pending.push(submitted);
    }
    const due = started + (tick + 1) * 10;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
  }
  await Promise.all(pending);
  await until('the paced jobs', async () => (await scalar(platform.databaseUrl, "SELECT count(*) AS n FROM jobs WHERE status IN ('queued', 'running')")) === 0);
  const elapsed = (performance.now() - started) / 1_000;
  return ((await databaseTransactions()) - before) / elapsed;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
}

export async function measureStreams(platform: BenchPlatform, seconds: number): Promise<StreamsResult> {
  const tokens = await accessTokens(platform.apiUrl, STREAM_USERS);
  const oneAbort = new AbortController();
  const ignored: number[] = [];
  await openStream(platform.apiUrl, tokens[0] as string, ignored, oneAbort.signal);
  const oneStream = await paced(platform, tokens, seconds);
  oneAbort.abort();

  const latencies: number[] = [];
  const abort = new AbortController();
  await Promise.all(tokens.flatMap((token) => Array.from({ length: STREAMS_PER_USER }, () => openStream(platform.apiUrl, token, latencies, abort.signal))));
  const allStreams = await paced(platform, tokens, seconds);
  abort.abort();
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    streams: STREAM_USERS * STREAMS_PER_USER,
    rate: RATE,
    seconds,
    delivered: latencies.length,
    latencyMs: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? 0 },
    transactionsPerSecond: { oneStream, allStreams },
  };
}

export async function measureFanOutAndStreams(options: { only: string[]; seconds: number }): Promise<{ fanOut?: FanOutResult; streams?: StreamsResult }> {
  const platform = await startBenchPlatform({ env: { SUBMIT_RATE_LIMIT_PER_SECOND: '100000', AUTH_RATE_LIMIT_PER_MINUTE: '100000', EVENT_STREAMS_PER_ADDRESS: '100000' } });
  try {
    const fanOut = options.only.includes('fanout') ? await measureFanOut(platform) : undefined;
    const streams = options.only.includes('streams') ? await measureStreams(platform, options.seconds) : undefined;
    return { fanOut, streams };
  } finally {
    await platform.stop();
  }
}

export function fanOutSection(result: { fanOut?: FanOutResult; streams?: StreamsResult }, header: string): string {
  const lines = [`## Fan-out and event streams`, '', header, ''];
  if (result.fanOut) {
    const { fanOut } = result;
    lines.push(
      `- ${TASKS.toLocaleString('en')} independent echo jobs (HTTP, 64 in flight): ${fanOut.independentSeconds.toFixed(1)} s, **${Math.round(fanOut.independentPerSecond)} jobs/s**`,
      `- one echo.batch job of ${TASKS.toLocaleString('en')} tasks, submit to the parent's success (reduce included): ${fanOut.fanOutSeconds.toFixed(1)} s, **${Math.round(fanOut.fanOutPerSecond)} tasks/s**, ${Math.round((100 * fanOut.fanOutPerSecond) / fanOut.independentPerSecond)} % of the independent rate (target ≥ 80 %)`,
    );
  }
  if (result.streams) {
    const { streams } = result;
    lines.push(
      `- ${streams.streams} open event streams (GET /v1/jobs/events, ${STREAM_USERS} users × ${STREAMS_PER_USER}) while echo jobs are submitted at ${streams.rate}/s for ${streams.seconds} s: ${streams.delivered.toLocaleString('en')} \`succeeded\` events delivered, latency from the state change the worker reported to the client p50 **${streams.latencyMs.p50} ms**, p99 **${streams.latencyMs.p99} ms** (max ${streams.latencyMs.max} ms)`,
      `- PostgreSQL transactions/s (pg_stat_database.xact_commit, the whole workload) under the same load: ${Math.round(streams.transactionsPerSecond.oneStream)} with one stream open, ${Math.round(streams.transactionsPerSecond.allStreams)} with ${streams.streams}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
