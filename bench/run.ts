import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EnvSchema, METRICS } from '../services/contract';
import { findFreePort } from '../services/local/free-port';
import { RedisServer } from '../services/local/redis';
import { measureBullmqCeiling, measureBullmqFedInBatches, type CeilingResult } from './bullmq-ceiling';
import { accessTokens, BENCH_USERS, ECHO_BODY, runLoad, statusCounts } from './driver';
import { fanOutSection, measureFanOutAndStreams } from './fanout-streams';
import { measureReadsBesideSubmits, READS_HEADING, readsSection } from './job-data-reads';
import { measureFloorLatency, measureHttpFloor, type HttpFloor } from './floors';
import type { LoadResult } from './load-generator';
import { startBenchPlatform, type BenchPlatform } from './platform';
import { cpuSeconds, machineCpu, ResourceMonitor, stolenShare } from './proc-stats';
import { commandsPerJob, redisCommandCounts, type RedisCommandCounts } from './redis-commands';

/**
 * `npm run bench`: the platform's throughput and latency next to BullMQ's raw ceiling,
 * measured in one run on this machine, written to bench/RESULTS.md. Ratios between the
 * figures hold on a noisy machine; absolute numbers do not.
 */

interface Settings {
  latencyRate: number;
  latencySeconds: number;
  sustainedSeconds: number;
  sustainedConnections: number;
  ceilingJobs: number;
  /** Unset: the platform's defaults, what `npm start` runs. Set from API_PROCESSES / WORKER_CONCURRENCY to measure another value. */
  apiProcesses?: number;
  workerConcurrency?: number;
}

/** The worker concurrency the platform runs when WORKER_CONCURRENCY is unset (the contract's default). */
const DEFAULT_WORKER_CONCURRENCY = EnvSchema.shape.WORKER_CONCURRENCY.parse(undefined);

function parseSettings(argv: string[]): Settings {
  // Read as the platform reads them, so the bench never measures a value the platform would refuse.
  const fromEnv = (name: 'API_PROCESSES' | 'WORKER_CONCURRENCY'): number | undefined => {
    const raw = process.env[name];
    if (raw === undefined) return undefined;
    const parsed = EnvSchema.shape[name].safeParse(raw);
    if (!parsed.success) throw new Error(`bench: ${name} ${parsed.error.issues[0]?.message ?? 'is not valid'}`);
    return parsed.data;
  };
  const settings: Settings = {
    latencyRate: 1_000,
    latencySeconds: 20,
    sustainedSeconds: 30,
    sustainedConnections: 64,
    ceilingJobs: 50_000,
    apiProcesses: fromEnv('API_PROCESSES'),
    workerConcurrency: fromEnv('WORKER_CONCURRENCY'),
  };
  if (argv.includes('--quick')) Object.assign(settings, { latencySeconds: 5, sustainedSeconds: 8, ceilingJobs: 10_000 });
  for (const [key, value] of Object.entries(settings)) {
    if (value !== undefined && (!Number.isFinite(value) || value <= 0)) throw new Error(`bench: ${key} must be a positive number`);
  }
  return settings;
}

async function succeededCounter(workerMetricsUrl: string): Promise<number> {
  const text = await (await fetch(`${workerMetricsUrl}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${METRICS.jobsSucceeded}{`) || line.startsWith(`${METRICS.jobsSucceeded} `))
    .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

async function waitForDrain(databaseUrl: string, timeoutMs = 180_000): Promise<number> {
  const started = performance.now();
  for (;;) {
    const counts = await statusCounts(databaseUrl);
    if (!counts.queued && !counts.running) return (performance.now() - started) / 1_000;
    if (performance.now() - started > timeoutMs) throw new Error(`jobs did not drain within ${timeoutMs / 1_000} s: ${JSON.stringify(counts)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

interface SustainedResult {
  load: LoadResult;
  /** Jobs that reached `succeeded` per second over the window after warm-up. */
  endToEndPerSecond: number;
  drainSeconds: number;
  /** Accepted jobs divided by the time from the first submit until the last one succeeded. */
  overallPerSecond: number;
  resources: Record<string, { cores: number; peakRssMiB: number }>;
  /** Share of the machine's CPU time stolen by the hypervisor over the measured window. */
  stolen: number;
  /** Redis commands per job that succeeded in the measured window. */
  redisCommands: RedisCommandCounts;
  /** Jobs by status once the backlog drained. */
  counts: Record<string, number>;
}

async function sustained(platform: BenchPlatform, tokens: string[], settings: Settings, generator: 'raw' | 'autocannon'): Promise<SustainedResult> {
  const warmUpSeconds = Math.min(5, settings.sustainedSeconds / 4);
  const started = performance.now();
  const loadPromise = runLoad(
    {
      url: `${platform.apiUrl}/v1/jobs`,
      tokens,
      body: ECHO_BODY,
      connections: settings.sustainedConnections,
      durationSeconds: settings.sustainedSeconds,
    },
    generator,
  );
  const monitor = new ResourceMonitor({ ...platform.pids });
  await new Promise((resolve) => setTimeout(resolve, warmUpSeconds * 1_000));
  monitor.begin();
  const machineAtStart = machineCpu();
  const commandsAtStart = await redisCommandCounts(platform.redisUrl);
  const windowStart = { at: performance.now(), done: await succeededCounter(platform.workerMetricsUrl) };
  const load = await loadPromise;
  const windowEnd = { at: performance.now(), done: await succeededCounter(platform.workerMetricsUrl) };
  const redisCommands = commandsPerJob(commandsAtStart, await redisCommandCounts(platform.redisUrl), windowEnd.done - windowStart.done);
  const stolen = stolenShare(machineAtStart, machineCpu());
  const resources = { ...monitor.end(), 'load generator': { cores: load.cores, peakRssMiB: Number.NaN } };
  const drainSeconds = await waitForDrain(platform.databaseUrl);
  const totalSeconds = (performance.now() - started) / 1_000;
  const endToEndPerSecond = (windowEnd.done - windowStart.done) / ((windowEnd.at - windowStart.at) / 1_000);
  process.stdout.write(`bench:   ${generator}: submits ${fmt(load.requestsPerSecond)}/s, end to end ${fmt(endToEndPerSecond)} jobs/s\n`);
  return {
    load,
    endToEndPerSecond,
    drainSeconds,
    overallPerSecond: load.accepted / totalSeconds,
    resources,
    stolen,
    redisCommands,
    counts: await statusCounts(platform.databaseUrl),
  };
}

/** CPU per job, in microseconds: Redis, and the Node process running BullMQ's producer and worker. */
interface CpuPerJob {
  redis: number;
  node: number;
}

interface Ceiling extends CeilingResult {
  /** Over adding and draining. */
  cpuMicrosPerJob: CpuPerJob;
  /** Share of the machine's CPU time stolen by the hypervisor while the ceiling ran. */
  stolen: number;
}

/** BullMQ fed in submit-sized bulks while it drains, with the platform's retention options. */
interface FedInBatches {
  batch: number;
  jobsPerSecond: number;
  cpuMicrosPerJob: CpuPerJob;
  redisCommands: RedisCommandCounts;
}

async function cpuPerJob<T>(redisPid: number, jobs: number, measure: () => Promise<T>): Promise<{ result: T; cpu: CpuPerJob }> {
  const redisBefore = cpuSeconds(redisPid);
  const nodeBefore = process.cpuUsage();
  const result = await measure();
  const nodeUsage = process.cpuUsage(nodeBefore);
  return { result, cpu: { redis: ((cpuSeconds(redisPid) - redisBefore) * 1e6) / jobs, node: (nodeUsage.user + nodeUsage.system) / jobs } };
}

async function withPrivateRedis<T>(use: (redis: RedisServer) => Promise<T>): Promise<T> {
  const redis = new RedisServer({ port: await findFreePort(), dir: path.join(os.tmpdir(), `pk-bench-ceiling-${process.pid}`), appendonly: true });
  await redis.start();
  try {
    return await use(redis);
  } finally {
    await redis.stop();
  }
}

function ceiling(jobs: number): Promise<Ceiling> {
  return withPrivateRedis(async (redis) => {
    const machineBefore = machineCpu();
    const { result, cpu } = await cpuPerJob(redis.pid ?? 0, jobs, () => measureBullmqCeiling({ redisUrl: redis.url, jobs, concurrency: 100 }));
    return { ...result, cpuMicrosPerJob: cpu, stolen: stolenShare(machineBefore, machineCpu()) };
  });
}

function fedInBatches(jobs: number, concurrency: number): Promise<FedInBatches> {
  const batch = 30;
  return withPrivateRedis(async (redis) => {
    const commandsBefore = await redisCommandCounts(redis.url);
    const { result, cpu } = await cpuPerJob(redis.pid ?? 0, jobs, () => measureBullmqFedInBatches({ redisUrl: redis.url, jobs, batch, concurrency }));
    const redisCommands = commandsPerJob(commandsBefore, await redisCommandCounts(redis.url), jobs);
    return { batch, jobsPerSecond: jobs / result.seconds, cpuMicrosPerJob: cpu, redisCommands };
  });
}

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${os.cpus().length} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, Node ${process.version}`;
}

function gitRevision(): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn('git', ['rev-parse', '--short', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('close', () => resolve(out.trim() || 'unknown'));
    child.on('error', () => resolve('unknown'));
  });
}

const fmt = (value: number, digits = 0) => value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** Whether the box or one process is the limit: a single-threaded process near 1.0 core, or all of them near the core count. */
function bound(resources: SustainedResult['resources']): string {
  const total = Object.values(resources).reduce((sum, usage) => sum + usage.cores, 0);
  const [name, usage] = Object.entries(resources).sort(([, a], [, b]) => b.cores - a.cores)[0] ?? ['none', { cores: 0 }];
  const cores = os.cpus().length;
  const verdict = usage.cores > 0.9 ? `${name} saturates its core` : total > cores * 0.85 ? 'the machine: every core is busy' : 'latency, not CPU';
  return `${verdict} (all processes ${total.toFixed(2)} of ${cores} cores; largest ${name} at ${usage.cores.toFixed(2)})`;
}

/** The submit latency at a steady rate, with what every process spent meanwhile. */
interface LatencyRun {
  load: LoadResult;
  resources: Record<string, { cores: number; peakRssMiB: number }>;
  stolen: number;
}

async function latencyAt(platform: BenchPlatform, tokens: string[], settings: Settings, generator: 'raw' | 'autocannon'): Promise<LatencyRun> {
  const monitor = new ResourceMonitor({ ...platform.pids });
  monitor.begin();
  const machineBefore = machineCpu();
  const load = await runLoad(
    {
      url: `${platform.apiUrl}/v1/jobs`,
      tokens,
      body: ECHO_BODY,
      // The raw generator paces requests itself; autocannon keeps one in flight per connection.
      connections: generator === 'raw' ? 32 : settings.sustainedConnections,
      overallRate: settings.latencyRate,
      durationSeconds: settings.latencySeconds,
    },
    generator,
  );
  const stolen = stolenShare(machineBefore, machineCpu());
  const resources = { ...monitor.end(), 'load generator': { cores: load.cores, peakRssMiB: Number.NaN } };
  await waitForDrain(platform.databaseUrl);
  process.stdout.write(`bench:   ${generator}: p50 ${load.latencyMs.p50} ms, p99 ${load.latencyMs.p99} ms, ${fmt(load.requestsPerSecond)} req/s\n`);
  return { load, resources, stolen };
}

/**
 * A freshly started platform with its defaults, warmed up, for one part of the run: each
 * sustained run starts from an empty database, and nothing of one run (rows, dead tuples,
 * a checkpoint under way) is charged to the next or to the ceiling measured after it.
 */
async function withPlatform<T>(settings: Settings, use: (platform: BenchPlatform, tokens: string[]) => Promise<T>): Promise<T> {
  process.stdout.write(
    `bench: starting the platform with its defaults (API processes ${settings.apiProcesses ?? 1}, worker concurrency ${settings.workerConcurrency ?? DEFAULT_WORKER_CONCURRENCY})…\n`,
  );
  const platform = await startBenchPlatform({ apiProcesses: settings.apiProcesses, workerConcurrency: settings.workerConcurrency });
  try {
    const tokens = await accessTokens(platform.apiUrl);
    await runLoad({ url: `${platform.apiUrl}/v1/jobs`, tokens, body: ECHO_BODY, connections: 16, amount: 3_000 });
    await waitForDrain(platform.databaseUrl);
    return await use(platform, tokens);
  } finally {
    await platform.stop();
  }
}

/** The processes of the platform itself (not the load generator): what a job costs the machine. */
const PLATFORM_PROCESSES = ['api', 'worker', 'postgres', 'redis'];

/** CPU of all the platform's processes per job, in µs. */
function platformMicrosPerJob(resources: Record<string, { cores: number }>, jobsPerSecond: number): number {
  const cores = PLATFORM_PROCESSES.reduce((total, name) => total + (resources[name]?.cores ?? 0), 0);
  return (cores * 1e6) / jobsPerSecond;
}

const latencyFigures = (load: LoadResult) => `p50 ${load.latencyMs.p50} ms, p90 ${load.latencyMs.p90} ms, p99 ${load.latencyMs.p99} ms, max ${load.latencyMs.max} ms`;
const percent = (share: number) => `${(share * 100).toFixed(0)} %`;
/** The ratio the target is set on: one decimal, so 24.6 % does not read as 25 %. */
const ratioPercent = (share: number) => `${(share * 100).toFixed(1)} %`;

const RESULTS_FILE = path.join(__dirname, '..', '..', 'bench', 'RESULTS.md');
const FAN_OUT_HEADING = '## Fan-out and event streams';

const PARTS = ['fanout', 'streams', 'reads'];

/** The parts `--only=` names (fanout, streams, reads); empty for the whole run. */
function onlyParts(argv: string[]): string[] {
  const option = argv.find((arg) => arg.startsWith('--only='));
  if (!option) return [];
  const parts = option.slice('--only='.length).split(',').filter(Boolean);
  for (const part of parts) if (!PARTS.includes(part)) throw new Error(`bench: --only takes ${PARTS.join(', ')}, not ${part}`);
  return parts;
}

/** Measures fan-out and event streams and writes their section of RESULTS.md, leaving the rest of the file as it is. */
async function fanOutAndStreams(parts: string[], quick: boolean, command: string): Promise<string> {
  process.stdout.write(`bench: ${parts.join(' and ')} on the platform…\n`);
  const result = await measureFanOutAndStreams({ only: parts, seconds: quick ? 5 : 10 });
  return fanOutSection(result, `Written by \`${command}\` (bench/fanout-streams.ts) on ${new Date().toISOString()}, commit ${await gitRevision()}. Machine: ${machine()}.`);
}

/** One user's job-data reads beside another's submits, with the read limit and without it. */
async function readsBesideSubmits(quick: boolean, command: string): Promise<string> {
  process.stdout.write("bench: one user's reads beside another's submits, with the read limit and without…\n");
  const results = await measureReadsBesideSubmits(quick ? 5 : 10);
  return readsSection(results, `Written by \`${command}\` (bench/job-data-reads.ts) on ${new Date().toISOString()}, commit ${await gitRevision()}. Machine: ${machine()}.`);
}

/** Puts `section` (which starts with `heading`) in RESULTS.md in place of the one there, or at the end. */
async function writeSection(heading: string, section: string): Promise<void> {
  const current = await readFile(RESULTS_FILE, 'utf8').catch(() => '');
  const start = current.indexOf(heading);
  const end = start < 0 ? -1 : current.indexOf('\n## ', start + heading.length);
  const next = start < 0 ? `${current.trimEnd()}\n\n${section}` : `${current.slice(0, start)}${section}${end < 0 ? '' : current.slice(end + 1)}`;
  await writeFile(RESULTS_FILE, next);
}

async function main(): Promise<void> {
  const settings = parseSettings(process.argv.slice(2));
  const quick = process.argv.includes('--quick');
  process.stdout.write(`bench: machine ${machine()}\n`);
  const only = onlyParts(process.argv.slice(2));
  if (only.length > 0) {
    const command = `npm run bench -- --only=${only.join(',')}${quick ? ' --quick' : ''}`;
    const fanOutParts = only.filter((part) => part !== 'reads');
    if (fanOutParts.length > 0) {
      const section = await fanOutAndStreams(fanOutParts, quick, command);
      process.stdout.write(section);
      await writeSection(FAN_OUT_HEADING, section);
    }
    if (only.includes('reads')) {
      const section = await readsBesideSubmits(quick, command);
      process.stdout.write(section);
      await writeSection(READS_HEADING, section);
    }
    return;
  }

  process.stdout.write('bench: BullMQ alone, fed in bulks as the platform feeds it…\n');
  const fed = await fedInBatches(settings.ceilingJobs, settings.workerConcurrency ?? DEFAULT_WORKER_CONCURRENCY);
  process.stdout.write(`bench:   ${fmt(fed.jobsPerSecond)} jobs/s in bulks of ${fed.batch}\n`);

  process.stdout.write('bench: HTTP floor (Express 5 + helmet + JSON body, nothing of ours)…\n');
  const httpFloor: HttpFloor = await measureHttpFloor({ seconds: quick ? 4 : 10, connections: settings.sustainedConnections, server: 'express' });
  const plainFloor: HttpFloor = await measureHttpFloor({ seconds: quick ? 4 : 10, connections: settings.sustainedConnections, server: 'plain' });
  process.stdout.write(`bench:   ${fmt(httpFloor.serverCpuMicrosPerRequest)} us of CPU per request (served by a plain createServer(app): ${fmt(plainFloor.serverCpuMicrosPerRequest)})\n`);

  process.stdout.write(`bench: autocannon at ${settings.latencyRate}/s against servers with nothing of ours (the Express stack, node:http alone)…\n`);
  const floorLatency = (server: 'express' | 'node') =>
    measureFloorLatency({ seconds: settings.latencySeconds, connections: settings.sustainedConnections, rate: settings.latencyRate, server });
  const latencyFloors = { express: await floorLatency('express'), node: await floorLatency('node') };
  process.stdout.write(`bench:   p99 ${latencyFloors.express.latencyMs.p99} ms (Express stack), ${latencyFloors.node.latencyMs.p99} ms (node:http alone)\n`);

  const { latencyRun, autocannonLatency } = await withPlatform(settings, async (platform, tokens) => {
    process.stdout.write(`bench: submit latency at ${settings.latencyRate}/s offered for ${settings.latencySeconds} s…\n`);
    return { latencyRun: await latencyAt(platform, tokens, settings, 'raw'), autocannonLatency: await latencyAt(platform, tokens, settings, 'autocannon') };
  });
  const { load: latency, resources: latencyResources, stolen: latencyStolen } = latencyRun;
  const workerConcurrency = settings.workerConcurrency ?? DEFAULT_WORKER_CONCURRENCY;

  // A share of the ceiling is taken against the ceiling measured right before and right after
  // the run it is compared with, each sustained run on a platform of its own: on a shared VM the
  // machine's speed drifts within minutes, and a ratio against a reading taken minutes away drifts with it.
  const measureCeiling = async (label: string): Promise<Ceiling> => {
    process.stdout.write(`bench: raw BullMQ ceiling (bulk add, no-op worker, no HTTP, no PostgreSQL), ${label}…\n`);
    const result = await ceiling(settings.ceilingJobs);
    process.stdout.write(`bench:   ${fmt(result.jobsPerSecond)} jobs/s\n`);
    return result;
  };
  const sustainedRun = (generator: 'raw' | 'autocannon') =>
    withPlatform(settings, (platform, tokens) => {
      process.stdout.write(`bench: sustained echo jobs end to end (${generator}), ${settings.sustainedConnections} connections for ${settings.sustainedSeconds} s…\n`);
      return sustained(platform, tokens, settings, generator);
    });
  const ceilings = [await measureCeiling('before the bench generator\'s sustained run')];
  const run = await sustainedRun('raw');
  ceilings.push(await measureCeiling('between the sustained runs'));
  const autocannonRun = await sustainedRun('autocannon');
  ceilings.push(await measureCeiling('after autocannon\'s sustained run'));
  const [ceilingFirst, ceilingBetween, ceilingLast] = ceilings as [Ceiling, Ceiling, Ceiling];
  const around = (before: Ceiling, after: Ceiling) => (before.jobsPerSecond + after.jobsPerSecond) / 2;
  const ceilingPerSecond = around(ceilingFirst, ceilingBetween);
  const autocannonCeilingPerSecond = around(ceilingBetween, ceilingLast);

  const ratio = run.endToEndPerSecond / ceilingPerSecond;
  const resourceRows = (resources: Record<string, { cores: number; peakRssMiB: number }>, jobsPerSecond: number) =>
    Object.entries(resources)
      .map(
        ([name, usage]) =>
          `| ${name} | ${usage.cores.toFixed(2)} | ${fmt((usage.cores * 1e6) / jobsPerSecond)} | ${Number.isNaN(usage.peakRssMiB) ? '-' : fmt(usage.peakRssMiB)} |`,
      )
      .join('\n');
  const perJob = (name: string) => ((run.resources[name]?.cores ?? 0) * 1e6) / run.load.requestsPerSecond;
  const platformMicros = Object.keys(run.resources).reduce((total, name) => total + perJob(name), 0);
  const floorMicros = httpFloor.serverCpuMicrosPerRequest + fed.cpuMicrosPerJob.redis + fed.cpuMicrosPerJob.node + perJob('postgres') + perJob('load generator');
  const cores = os.cpus().length;
  const ceilingLine = (label: string, result: Ceiling) =>
    `- ${label}: ${fmt(result.jobs)} jobs added with addBulk in ${result.addSeconds.toFixed(2)} s, drained by one no-op worker (concurrency ${result.concurrency}) in ${result.drainSeconds.toFixed(2)} s: **${fmt(result.jobsPerSecond)} jobs/s**; CPU per job over adding and draining: Redis ${fmt(result.cpuMicrosPerJob.redis)} µs, the Node process ${fmt(result.cpuMicrosPerJob.node)} µs; host steal ${percent(result.stolen)}`;
  const report = `# Benchmark results

Written by \`npm run bench${quick ? ' -- --quick' : ''}\` (bench/run.ts) on ${new Date().toISOString()}, commit ${await gitRevision()}.
Machine: ${machine()}. Everything on one box, configured as \`npm start\` configures it (no tuning): PostgreSQL (embedded, fsync on), Redis (AOF everysec),
the API (${settings.apiProcesses ?? 1} process${(settings.apiProcesses ?? 1) > 1 ? 'es' : ''}), one worker (concurrency ${workerConcurrency}), ${BENCH_USERS} users submitting in turn,
and the load generator in its own process (raw keep-alive sockets: closed loop at full speed for the
sustained run; a steady open-loop sender for the latency run, latency counted from when each request was due).
The latency runs share one platform; each sustained run gets a freshly started one, with the raw BullMQ
ceiling measured right before and right after it. Compare ratios, not absolute times. "Host steal" is the share of the machine's CPU time the hypervisor gave to other guests meanwhile
(/proc/stat): a figure measured while it was high is low for reasons outside the code.

## Summary

| figure | result | target |
| --- | --- | --- |
| echo jobs end to end, sustained (submit → succeeded) | **${fmt(run.endToEndPerSecond)} jobs/s** | ≥ 3,000 jobs/s |
| share of the raw BullMQ ceiling measured in this run | **${ratioPercent(ratio)}** | ≥ 25 % |
| submit latency at ${fmt(settings.latencyRate)} submits/s offered | p50 ${latency.latencyMs.p50} ms, **p99 ${latency.latencyMs.p99} ms** | p99 < 20 ms |
| raw BullMQ ceiling (bulk add + no-op worker, no HTTP, no PostgreSQL), mean of the readings right before and after each sustained run | ${fmt(ceilingPerSecond)} jobs/s around the bench generator's run, ${fmt(autocannonCeilingPerSecond)} around autocannon's (readings ${ceilings.map((reading) => fmt(reading.jobsPerSecond)).join(', ')}) | reference |
| API peak RSS / worker peak RSS under sustained load | ${fmt(run.resources.api?.peakRssMiB ?? 0)} MiB / ${fmt(run.resources.worker?.peakRssMiB ?? 0)} MiB | < 256 MiB each |
| autocannon (64 connections, ${BENCH_USERS} users in turn): echo jobs end to end, sustained | **${fmt(autocannonRun.endToEndPerSecond)} jobs/s** (${ratioPercent(autocannonRun.endToEndPerSecond / autocannonCeilingPerSecond)} of the ceiling around it) | ≥ 3,000 jobs/s, ≥ 25 % |
| autocannon: submit latency at ${fmt(settings.latencyRate)} submits/s offered | p50 ${autocannonLatency.load.latencyMs.p50} ms, **p99 ${autocannonLatency.load.latencyMs.p99} ms** (servers with nothing of ours, same generator and run: the Express stack p99 ${latencyFloors.express.latencyMs.p99} ms, node:http alone p99 ${latencyFloors.node.latencyMs.p99} ms) | p99 < 20 ms |
| CPU of all platform processes per job (api, worker, postgres, redis) at ${fmt(settings.latencyRate)}/s offered | ${fmt(platformMicrosPerJob(latencyResources, latency.requestsPerSecond))} µs (autocannon: ${fmt(platformMicrosPerJob(autocannonLatency.resources, autocannonLatency.load.requestsPerSecond))} µs) | lower is better |
| CPU of all platform processes per job at full speed | ${fmt(platformMicrosPerJob(run.resources, run.load.requestsPerSecond))} µs (autocannon: ${fmt(platformMicrosPerJob(autocannonRun.resources, autocannonRun.load.requestsPerSecond))} µs) | lower is better |

## Sustained load (${settings.sustainedSeconds} s, ${settings.sustainedConnections} connections, as fast as accepted)

- submits accepted: ${fmt(run.load.accepted)} at ${fmt(run.load.requestsPerSecond)}/s (non-2xx ${run.load.non2xx}, errors ${run.load.errors}); submit p50 ${run.load.latencyMs.p50} ms, p99 ${run.load.latencyMs.p99} ms
- end to end, measured on the worker's succeeded counter after ${Math.min(5, settings.sustainedSeconds / 4)} s of warm-up: ${fmt(run.endToEndPerSecond)} jobs/s
- backlog drained ${run.drainSeconds.toFixed(1)} s after the load stopped; overall ${fmt(run.overallPerSecond)} jobs/s from first submit to last success
- final job statuses: ${JSON.stringify(run.counts)}
- bound by: ${bound(run.resources)}; host steal ${percent(run.stolen)}
- Redis commands per job: ${run.redisCommands.all.toFixed(1)}, of which BullMQ script calls ${run.redisCommands.scripts.toFixed(2)} (BullMQ alone, fed in bulks of ${fed.batch}: ${fed.redisCommands.all.toFixed(1)} and ${fed.redisCommands.scripts.toFixed(2)})

| process | cores used | CPU per job (µs) | peak RSS (MiB) |
| --- | --- | --- | --- |
${resourceRows(run.resources, run.load.requestsPerSecond)}

### Where the CPU goes, against what the parts cost alone

Measured in this run: the bare HTTP stack (bench/http-floor-server.ts: Express 5, helmet, JSON body, a
202 with a job-sized body, nothing of ours, served as the API serves it by services/api/http-server.ts; served
by a plain \`createServer(app)\` instead, the same stack costs ${fmt(plainFloor.serverCpuMicrosPerRequest)} µs per request) under the same load generator, and BullMQ alone fed the way the
platform feeds it (bulks of ${fed.batch} with the platform's retention options while a no-op worker of concurrency
${workerConcurrency} drains: ${fmt(fed.jobsPerSecond)} jobs/s; prefilled, as in the ceiling, it costs
${fmt(ceilingFirst.cpuMicrosPerJob.node + ceilingFirst.cpuMicrosPerJob.redis)} µs per job instead).

| part | platform (µs of CPU per job) | the part alone (µs) |
| --- | --- | --- |
| API (HTTP, validation, auth, batched insert, relay's addBulk) | ${fmt(perJob('api'))} | HTTP stack ${fmt(httpFloor.serverCpuMicrosPerRequest)} (addBulk: in BullMQ's row) |
| worker + Redis (BullMQ, batched state writes) | ${fmt(perJob('worker') + perJob('redis'))} | BullMQ producer + worker ${fmt(fed.cpuMicrosPerJob.node)}, Redis ${fmt(fed.cpuMicrosPerJob.redis)} |
| PostgreSQL (insert, run-state read, transition write, 3 audit rows) | ${fmt(perJob('postgres'))} | - |
| load generator | ${fmt(perJob('load generator'))} | - |
| **total** | **${fmt(platformMicros)}** | ${fmt(floorMicros)} with PostgreSQL and the load generator as measured |

On ${cores} cores, ${fmt(platformMicros)} µs per job allows ${fmt((cores * 1e6) / platformMicros)} jobs/s; if everything of ours cost
nothing (the parts alone plus PostgreSQL and the load generator as they are), ${fmt((cores * 1e6) / floorMicros)} jobs/s, which is
${ratioPercent((cores * 1e6) / floorMicros / ceilingPerSecond)} of the ceiling measured in this run.

## Submit latency (${fmt(settings.latencyRate)} submits/s offered for ${settings.latencySeconds} s, 32 connections)

- achieved ${fmt(latency.requestsPerSecond)} req/s, accepted ${fmt(latency.accepted)}, non-2xx ${latency.non2xx}, errors ${latency.errors}
- latency p50 ${latency.latencyMs.p50} ms, p90 ${latency.latencyMs.p90} ms, p99 ${latency.latencyMs.p99} ms, max ${latency.latencyMs.max} ms
- host steal ${percent(latencyStolen)}

| process | cores used | CPU per job (µs) | peak RSS (MiB) |
| --- | --- | --- | --- |
${resourceRows(latencyResources, latency.requestsPerSecond)}

## The same through autocannon (64 connections, ${BENCH_USERS} users in turn)

An independent load generator as a check on the bench's own: each connection sends as the users in
turn. Its requests cost the machine more than the bench's prebuilt ones (see "load generator" below),
CPU the platform does not get. Its rate limit is not a steady pace: each connection sends its share of
a second back to back, then waits for the next second (autocannon's lib/httpClient.js resets a count
of requests per second on a 1 s interval), and with a rate set it records each latency with
coordinated-omission corrections at a 1 ms expected interval. So "at ${fmt(settings.latencyRate)}/s offered" below is a burst
each second, answered at full speed with ${settings.sustainedConnections} requests in flight; the steady pace is the bench's
own generator above.

- sustained (${settings.sustainedSeconds} s, as fast as answered): submits ${fmt(autocannonRun.load.requestsPerSecond)}/s (non-2xx ${autocannonRun.load.non2xx}, errors ${autocannonRun.load.errors}), submit p50 ${autocannonRun.load.latencyMs.p50} ms, p99 ${autocannonRun.load.latencyMs.p99} ms; end to end ${fmt(autocannonRun.endToEndPerSecond)} jobs/s; backlog drained ${autocannonRun.drainSeconds.toFixed(1)} s after; host steal ${percent(autocannonRun.stolen)}
- at ${fmt(settings.latencyRate)}/s offered: achieved ${fmt(autocannonLatency.load.requestsPerSecond)} req/s, latency ${latencyFigures(autocannonLatency.load)}; host steal ${percent(autocannonLatency.stolen)}
- the same offer (${fmt(settings.latencyRate)}/s, ${settings.sustainedConnections} connections, ${settings.latencySeconds} s) to servers with nothing of ours, measured before the platform started
  (bench/http-floor-server.ts answering the 202 alone): the Express stack as the API serves it, ${latencyFigures(latencyFloors.express)};
  node:http alone, no Express, ${latencyFigures(latencyFloors.node)}. That much of the figure is autocannon's
  burst on this machine; what the platform shows beyond it is the platform's.

| process | cores used, sustained | CPU per job, sustained (µs) | cores used at ${fmt(settings.latencyRate)}/s | CPU per job at ${fmt(settings.latencyRate)}/s (µs) |
| --- | --- | --- | --- | --- |
${Object.keys(autocannonRun.resources)
  .map((name) => {
    const full = autocannonRun.resources[name] ?? { cores: 0 };
    const paced = autocannonLatency.resources[name] ?? { cores: 0 };
    return `| ${name} | ${full.cores.toFixed(2)} | ${fmt((full.cores * 1e6) / autocannonRun.load.requestsPerSecond)} | ${paced.cores.toFixed(2)} | ${fmt((paced.cores * 1e6) / autocannonLatency.load.requestsPerSecond)} |`;
  })
  .join('\n')}

## Raw BullMQ ceiling

${ceilingLine("right before the bench generator's sustained run", ceilingFirst)}
${ceilingLine('between the two sustained runs', ceilingBetween)}
${ceilingLine("right after autocannon's sustained run", ceilingLast)}
- fed in bulks of ${fed.batch} while draining (concurrency ${workerConcurrency}, the platform's retention options): ${fmt(fed.jobsPerSecond)} jobs/s, Redis
  ${fmt(fed.cpuMicrosPerJob.redis)} µs and Node ${fmt(fed.cpuMicrosPerJob.node)} µs per job; ${fed.redisCommands.all.toFixed(1)} Redis commands per job, ${fed.redisCommands.scripts.toFixed(2)} of them script calls
`;
  // A quick run's figures are too short to stand for the platform: they go beside the results, not over them.
  const target = quick ? path.join(os.tmpdir(), 'platform-kit-bench-quick.md') : path.resolve(__dirname, '..', '..', 'bench', 'RESULTS.md');
  const command = `npm run bench${quick ? ' -- --quick' : ''}`;
  await writeFile(target, `${report}\n${await fanOutAndStreams(['fanout', 'streams'], quick, command)}\n${await readsBesideSubmits(quick, command)}`);
  process.stdout.write(`bench: wrote ${target}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
