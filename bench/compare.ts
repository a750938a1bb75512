import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { accessTokens, ECHO_BODY, runLoad } from './driver';
import type { BenchPlatform, BenchPlatformOptions } from './platform';
import { ResourceMonitor } from './proc-stats';

/**
 * `npm run bench:compare -- <git revision> [--runs N] [--seconds S]`: the platform at another
 * revision and at this checkout, run alternately under the same load generator (this
 * checkout's), N runs of S seconds each at full speed. On a machine whose speed drifts from
 * one minute to the next, only a side-by-side comparison says whether a change helped.
 * Prints mean jobs/s and CPU per job by process for each side.
 */

const run = promisify(execFile);

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
  jobsPerSecond: number;
  cpuMicrosPerJob: Record<(typeof PROCESSES)[number], number>;
}

function parseArgs(argv: string[]): { revision: string; runs: number; seconds: number } {
  const [revision] = argv.filter((arg) => !arg.startsWith('--'));
  const flag = (name: string, fallback: number) => {
    const raw = argv.find((arg) => arg.startsWith(`--${name}=`))?.split('=')[1];
    const value = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer`);
    return value;
  };
  if (!revision) throw new Error('usage: npm run bench:compare -- <git revision> [--runs=N] [--seconds=S]');
  return { revision, runs: flag('runs', 3), seconds: flag('seconds', 10) };
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

async function sample(side: Side, seconds: number): Promise<Sample> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { startBenchPlatform } = require(side.platformModule) as { startBenchPlatform(options: BenchPlatformOptions): Promise<BenchPlatform> };
  const platform = await startBenchPlatform(SAME_ON_BOTH_SIDES);
  try {
    const tokens = await accessTokens(platform.apiUrl);
    const load = { url: `${platform.apiUrl}/v1/jobs`, tokens, body: ECHO_BODY };
    await runLoad({ ...load, connections: 16, amount: 2_000 });
    const monitor = new ResourceMonitor({ ...platform.pids });
    monitor.begin();
    const result = await runLoad({ ...load, connections: 64, durationSeconds: seconds });
    const usage = monitor.end();
    const perJob = (name: (typeof PROCESSES)[number]) => ((usage[name]?.cores ?? 0) * 1e6) / result.requestsPerSecond;
    return {
      jobsPerSecond: result.requestsPerSecond,
      cpuMicrosPerJob: { api: perJob('api'), worker: perJob('worker'), postgres: perJob('postgres'), redis: perJob('redis') },
    };
  } finally {
    await platform.stop();
  }
}

const mean = (values: number[]) => values.reduce((total, value) => total + value, 0) / values.length;
const fmt = (value: number) => Math.round(value).toLocaleString('en-US');

async function main(): Promise<void> {
  const { revision, runs, seconds } = parseArgs(process.argv.slice(2));
  const repository = path.resolve(__dirname, '..', '..');
  process.stdout.write(`compare: building ${revision}…\n`);
  const other = await buildRevision(revision, repository);
  const sides: Side[] = [other.side, { label: 'this checkout', platformModule: path.join(__dirname, 'platform.js') }];
  const samples = new Map<string, Sample[]>(sides.map((side) => [side.label, []]));
  try {
    for (let round = 1; round <= runs; round += 1) {
      for (const side of sides) {
        const result = await sample(side, seconds);
        samples.get(side.label)?.push(result);
        process.stdout.write(`compare: round ${round}, ${side.label}: ${fmt(result.jobsPerSecond)} jobs/s\n`);
      }
    }
  } finally {
    await other.cleanup();
  }
  process.stdout.write(`\n| side | jobs/s (mean of ${runs}) | ${PROCESSES.map((name) => `${name} µs/job`).join(' | ')} | total µs/job |\n`);
  process.stdout.write(`| --- | --- | ${PROCESSES.map(() => '---').join(' | ')} | --- |\n`);
  for (const side of sides) {
    const list = samples.get(side.label) ?? [];
    const perProcess = PROCESSES.map((name) => mean(list.map((entry) => entry.cpuMicrosPerJob[name])));
    const total = perProcess.reduce((sum, value) => sum + value, 0);
    process.stdout.write(`| ${side.label} | ${fmt(mean(list.map((entry) => entry.jobsPerSecond)))} | ${perProcess.map(fmt).join(' | ')} | ${fmt(total)} |\n`);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`compare: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
