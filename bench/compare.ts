import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseCompareArgs, type CompareJob, type CompareSettings } from './compare-args';
import { accessTokens, ECHO_BODY, runLoad, statusCounts } from './driver';
import type { BenchPlatform, BenchPlatformOptions } from './platform';
import { ResourceMonitor } from './proc-stats';

/**
 * `npm run bench:compare -- <git revision> [--runs=N] [--seconds=S] [--rate=R | --drain=J] [--generator=raw|autocannon] [--job=echo|sleep]`:
 * the platform at another revision and at this checkout, run alternately under the same
 * load generator (this checkout's), N runs of S seconds each: at full speed (64
 * connections), or with --rate at R submits/s offered. The bench's own generator drives
 * both sides unless --generator=autocannon says otherwise; at a rate it sends at a steady
 * pace over 32 connections, and autocannon over 64, as `npm run bench` drives each. With
 * --drain, each run submits J echo jobs while the worker is stopped, then lets it drain
 * them alone: the worker's own cost, measured with the API idle (far less noisy than a
 * whole-platform run). --job=sleep submits 0 ms sleeps, each in a queue entry of its own,
 * instead of echo jobs (which share entries). On a machine whose speed drifts from one minute to the next, only a
 * side-by-side comparison says whether a change helped. Prints, for each side, submits/s,
 * echo jobs finished per second, submit latency and CPU per job by process.
 */

const run = promisify(execFile);

/**
 * What each submit sends: echo jobs (ten submitted together share a queue entry), or 0 ms
 * sleeps, jobs that do nothing in entries of their own: what every other type costs the
 * queue and the worker beside its own work.
 */
const JOB_BODIES: Record<CompareJob, string> = { echo: ECHO_BODY, sleep: JSON.stringify({ type: 'sleep', input: { ms: 0 } }) };

/**
 * The settings both sides get, whatever each revision's bench would pick by itself (older
 * revisions tuned theirs): a comparison of code, not of configuration.
 */
const SAME_ON_BOTH_SIDES: BenchPlatformOptions = {
  apiProcesses: 1,
  workerConcurrency: 100,
  env: { NODE_ENV: 'production', LOG_LEVEL: 'warn', SUBMIT_RATE_LIMIT_PER_SECOND: '1000000', AUTH_RATE_LIMIT_PER_MINUTE: '1000' },
};
const PROCESSES = ['api', 'worker', 'postgres', 'redis'] as const;

interface Side {
  label: string;
  /** The revision's compiled bench/platform.js. */
  platformModule: string;
}

interface Sample {
  submitsPerSecond: number;
  /** Jobs that reached `succeeded` during the load, per second. */
  jobsPerSecond: number;
  latencyMs: { p50: number; p99: number };
  cpuMicrosPerJob: Record<(typeof PROCESSES)[number], number>;
}

/** Builds the revision's services and bench into a scratch directory that resolves this checkout's node_modules. */
async function buildRevision(revision: string, repository: string): Promise<{ side: Side; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'pk-compare-'));
  const source = path.join(root, 'source');
  await mkdir(source);
  const { stdout: commit } = await run('git', ['rev-parse', '--short', `${revision}^{commit}`], { cwd: repository });
  await run('bash', ['-c', `git archive ${commit.trim()} | tar -x -C "${source}"`], { cwd: repository });
  await symlink(path.join(repository, 'node_modules'), path.join(source, 'node_modules'));
  // Type errors against today's dependencies do not stop the emit; a missing module would fail at run time.
  // The output sits inside the source tree, so it finds node_modules, package.json and the migrations there.
  await run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(source, 'tsconfig.build.json'), '--outDir', path.join(source, 'dist')]).catch(
    () => undefined,
  );
  return {
    side: { label: `${revision} (${commit.trim()})`, platformModule: path.join(source, 'dist', 'bench', 'platform.js') },
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

/** Jobs that have reached `succeeded` so far. */
async function succeededJobs(databaseUrl: string): Promise<number> {
  return (await statusCounts(databaseUrl)).succeeded ?? 0;
}

/** Each process's CPU per job, from the cores a ResourceMonitor saw it use at this many jobs/s. */
function cpuMicrosPerJob(usage: Record<string, { cores: number }>, jobsPerSecond: number): Sample['cpuMicrosPerJob'] {
  const perJob = (name: (typeof PROCESSES)[number]) => ((usage[name]?.cores ?? 0) * 1e6) / jobsPerSecond;
  return { api: perJob('api'), worker: perJob('worker'), postgres: perJob('postgres'), redis: perJob('redis') };
}

async function sample(side: Side, settings: CompareSettings): Promise<Sample> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { startBenchPlatform } = require(side.platformModule) as { startBenchPlatform(options: BenchPlatformOptions): Promise<BenchPlatform> };
  const platform = await startBenchPlatform(SAME_ON_BOTH_SIDES);
  try {
    const tokens = await accessTokens(platform.apiUrl);
    const load = { url: `${platform.apiUrl}/v1/jobs`, tokens, body: JOB_BODIES[settings.job] };
    await runLoad({ ...load, connections: 16, amount: 2_000 });
    if (settings.drain !== undefined) return await sampleDrain(platform, load, settings.drain);
    const monitor = new ResourceMonitor({ ...platform.pids });
    monitor.begin();
    const before = { at: performance.now(), succeeded: await succeededJobs(platform.databaseUrl) };
    // The bench's own generator paces a rate itself; autocannon keeps one request in flight per connection.
    const connections = settings.rate && settings.generator === 'raw' ? 32 : 64;
    const result = await runLoad({ ...load, connections, overallRate: settings.rate, durationSeconds: settings.seconds }, settings.generator);
    const after = { at: performance.now(), succeeded: await succeededJobs(platform.databaseUrl) };
    return {
      submitsPerSecond: result.requestsPerSecond,
      jobsPerSecond: ((after.succeeded - before.succeeded) * 1_000) / (after.at - before.at),
      latencyMs: { p50: result.latencyMs.p50, p99: result.latencyMs.p99 },
      cpuMicrosPerJob: cpuMicrosPerJob(monitor.end(), result.requestsPerSecond),
    };
  } finally {
    await platform.stop();
  }
}

/**
 * The worker alone: jobs are queued while it is stopped (SIGSTOP), then it drains them with
 * the API idle. Submit figures do not apply (NaN, printed as "-").
 */
async function sampleDrain(platform: BenchPlatform, load: { url: string; tokens: string[]; body: string }, jobs: number): Promise<Sample> {
  process.kill(platform.pids.worker, 'SIGSTOP');
  let resumed = false;
  try {
    const target = (await succeededJobs(platform.databaseUrl)) + jobs;
    await runLoad({ ...load, connections: 32, amount: jobs });
    // The API hands committed rows to BullMQ within its hand-off window; let the last ones land.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const monitor = new ResourceMonitor({ ...platform.pids });
    monitor.begin();
    const started = performance.now();
    process.kill(platform.pids.worker, 'SIGCONT');
    resumed = true;
    while ((await succeededJobs(platform.databaseUrl)) < target) await new Promise((resolve) => setTimeout(resolve, 100));
    const jobsPerSecond = (jobs * 1_000) / (performance.now() - started);
    return {
      submitsPerSecond: Number.NaN,
      jobsPerSecond,
      latencyMs: { p50: Number.NaN, p99: Number.NaN },
      cpuMicrosPerJob: cpuMicrosPerJob(monitor.end(), jobsPerSecond),
    };
  } finally {
    if (!resumed) process.kill(platform.pids.worker, 'SIGCONT');
  }
}

const mean = (values: number[]) => values.reduce((total, value) => total + value, 0) / values.length;
const fmt = (value: number) => (Number.isNaN(value) ? '-' : Math.round(value).toLocaleString('en-US'));

async function main(): Promise<void> {
  const settings = parseCompareArgs(process.argv.slice(2));
  const { revision, runs } = settings;
  const repository = path.resolve(__dirname, '..', '..');
  process.stdout.write(`compare: building ${revision}…\n`);
  const other = await buildRevision(revision, repository);
  const sides: Side[] = [other.side, { label: 'this checkout', platformModule: path.join(__dirname, 'platform.js') }];
  const samples = new Map<string, Sample[]>(sides.map((side) => [side.label, []]));
  try {
    for (let round = 1; round <= runs; round += 1) {
      for (const side of sides) {
        const result = await sample(side, settings);
        samples.get(side.label)?.push(result);
        const figures = settings.drain
          ? `drained ${fmt(result.jobsPerSecond)} jobs/s, worker ${fmt(result.cpuMicrosPerJob.worker)} µs/job`
          : `submits ${fmt(result.submitsPerSecond)}/s, end to end ${fmt(result.jobsPerSecond)} jobs/s, submit p99 ${result.latencyMs.p99} ms`;
        process.stdout.write(`compare: round ${round}, ${side.label}: ${figures}\n`);
      }
    }
  } finally {
    await other.cleanup();
  }
  const offered = settings.rate ? `${fmt(settings.rate)} submits/s offered` : 'full speed';
  const load = settings.drain ? `the worker draining ${fmt(settings.drain)} queued jobs alone` : settings.generator === 'autocannon' ? `${offered}, through autocannon` : offered;
  process.stdout.write(`\n${settings.job} jobs, ${load}, means of ${runs} runs${settings.drain ? '' : ` of ${settings.seconds} s`}:\n\n`);
  process.stdout.write(`| side | submits/s | jobs/s end to end | submit p50 / p99 (p99 range), ms | ${PROCESSES.map((name) => `${name} µs/job`).join(' | ')} | total µs/job |\n`);
  process.stdout.write(`| --- | --- | --- | --- | ${PROCESSES.map(() => '---').join(' | ')} | --- |\n`);
  for (const side of sides) {
    const list = samples.get(side.label) ?? [];
    const perProcess = PROCESSES.map((name) => mean(list.map((entry) => entry.cpuMicrosPerJob[name])));
    const total = perProcess.reduce((sum, value) => sum + value, 0);
    const p99s = list.map((entry) => entry.latencyMs.p99);
    // A p99 swings from run to run far more than a mean does: the range says how far.
    const latency = settings.drain ? '-' : `${mean(list.map((entry) => entry.latencyMs.p50)).toFixed(1)} / ${mean(p99s).toFixed(1)} (${Math.min(...p99s)}-${Math.max(...p99s)})`;
    process.stdout.write(
      `| ${side.label} | ${fmt(mean(list.map((entry) => entry.submitsPerSecond)))} | ${fmt(mean(list.map((entry) => entry.jobsPerSecond)))} | ${latency} | ${perProcess.map(fmt).join(' | ')} | ${fmt(total)} |\n`,
    );
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`compare: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
