/** Which load generator drives a comparison: the bench's own (bench/load-generator.ts) or autocannon. */
export type Generator = 'raw' | 'autocannon';

/** The job every submit asks for (see JOB_BODIES in compare.ts). */
export type CompareJob = 'echo' | 'sleep';
const JOBS: readonly CompareJob[] = ['echo', 'sleep'];

export interface CompareSettings {
  revision: string;
  runs: number;
  seconds: number;
  /** Submits/s offered; full speed when unset. */
  rate?: number;
  /** Jobs queued while the worker is stopped, then drained by it alone; unset for a submit run. */
  drain?: number;
  generator: Generator;
  job: CompareJob;
}

export const COMPARE_USAGE =
  'usage: npm run bench:compare -- <git revision> [--runs=N] [--seconds=S] [--rate=R | --drain=J] [--generator=raw|autocannon] [--job=echo|sleep]';

const NUMBER_FLAGS = ['runs', 'seconds', 'rate', 'drain'] as const;
const GENERATORS: readonly Generator[] = ['raw', 'autocannon'];

/**
 * The command line of `npm run bench:compare`. A flag it does not know, or a value it cannot
 * use, is refused with its name: a mistyped `--rates=1000` would otherwise compare at full
 * speed without a word.
 */
export function parseCompareArgs(argv: readonly string[]): CompareSettings {
  const positional = argv.filter((arg) => !arg.startsWith('--'));
  if (positional.length !== 1) throw new Error(COMPARE_USAGE);
  const flags = new Map<string, string>();
  for (const arg of argv.filter((candidate) => candidate.startsWith('--'))) {
    const match = /^--([a-z]+)=(.+)$/.exec(arg);
    if (!match) throw new Error(`${arg}: flags take the form --name=value\n${COMPARE_USAGE}`);
    const [, name = '', value = ''] = match;
    if (![...NUMBER_FLAGS, 'generator', 'job'].includes(name)) throw new Error(`--${name} is not a flag of bench:compare\n${COMPARE_USAGE}`);
    if (flags.has(name)) throw new Error(`--${name} is given twice`);
    flags.set(name, value);
  }
  const count = (name: (typeof NUMBER_FLAGS)[number]): number | undefined => {
    const raw = flags.get(name);
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, not "${raw}"`);
    return value;
  };
  const generator = flags.get('generator') ?? 'raw';
  if (!GENERATORS.includes(generator as Generator)) throw new Error(`--generator must be one of ${GENERATORS.join(', ')}, not "${generator}"`);
  const job = flags.get('job') ?? 'echo';
  if (!JOBS.includes(job as CompareJob)) throw new Error(`--job must be one of ${JOBS.join(', ')}, not "${job}"`);
  const settings: CompareSettings = {
    revision: positional[0] as string,
    runs: count('runs') ?? 3,
    seconds: count('seconds') ?? 10,
    rate: count('rate'),
    drain: count('drain'),
    generator: generator as Generator,
    job: job as CompareJob,
  };
  if (settings.rate !== undefined && settings.drain !== undefined) throw new Error('--rate and --drain measure different things: give one of them');
  if (settings.drain !== undefined && flags.has('generator')) throw new Error('--drain measures the worker alone, with no load generator running: drop --generator');
  return settings;
}
