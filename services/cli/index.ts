#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { EnvError, JOB_STATUSES } from '../contract';
import { DomainError } from '../core/errors';
import { cancelJob, listJobs, retryJob, showJob } from './commands/jobs';
import { doctor, doctorStack } from './commands/doctor';
import { listDeadLetters, replayDeadLetters } from './commands/dlq';
import { dbCancel, dbLocks } from './commands/db';
import { createAdmin, purge, rotateKeys, setRole } from './commands/identity';
import { migrate } from './commands/migrate';
import { pauseQueue, queueStats, reconcile, resumeQueue } from './commands/queues';
import { withRuntime } from './context';
import { UsageError } from './output';

/**
 * `platform`: the operator's CLI. Runbooks call these sub-commands, never ad-hoc scripts.
 * Exit status: 0 success/healthy, 1 failure/unhealthy, 2 bad usage or configuration.
 */
/** Runs a parsed command; tests pass one that records instead, to parse without side effects. */
export type Executor = (command: () => Promise<number>) => Promise<void>;

export function buildProgram(execute: Executor = run): Command {
  const program = new Command('platform')
    .description('Operate the Platform Kit job platform (reads DATABASE_URL, REDIS_URL, QUEUE_PREFIX, … from the environment)')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('migrate')
    .description('apply pending SQL migrations (needs only DATABASE_URL)')
    .option('--status', 'list applied and pending migrations; exit 1 when any is pending')
    .option('--json', 'machine-readable output')
    .action((options) => execute(() => migrate(options)));

  program
    .command('doctor')
    .description('say whether the platform is healthy and why not; exit 1 when it is not')
    .option('--json', 'machine-readable output')
    .option('--worker-timeout <seconds>', 'a worker whose heartbeat is older is dead', '30')
    .option('--max-queue-age <seconds>', 'queued longer than this counts as a backlog', '300')
    .option('--max-relay-lag <seconds>', 'accepted jobs missing from Redis longer than this fail the check', '60')
    .option('--stack <stack>', 'also check what the stack adds to the cluster: CRDs, the KEDA scaler against the queue, rules loaded by Prometheus, scrape targets, Alertmanager')
    .option('--kube-api <url>', 'with --stack: the Kubernetes API (default: in-cluster, from the pod\'s service account; outside, e.g. http://127.0.0.1:8001 from `kubectl proxy`)')
    .option('--prometheus-url <url>', 'with --stack: reach Prometheus directly instead of through the API server')
    .action((options) =>
      execute(async () => {
        if (options.stack === undefined && (options.kubeApi !== undefined || options.prometheusUrl !== undefined)) throw new UsageError('--kube-api and --prometheus-url need --stack');
        return options.stack === undefined ? withRuntime(doctor(options)) : doctorStack(options, withRuntime);
      }),
    );

  const jobs = program.command('jobs').description('inspect and act on jobs of every owner');
  jobs
    .command('list')
    .description('jobs of every owner, newest first, a page at a time')
    .option('--status <status>', `only jobs in this status: ${JOB_STATUSES.join(', ')}`)
    .option('--type <type>', 'job type, e.g. file.checksum')
    .option('--owner <userId>', 'only this owner\'s jobs')
    .option('--limit <n>', 'page size (1-1000)', '20')
    .option('--cursor <cursor>', 'continue after a previous page')
    .option('--json', 'machine-readable output')
    .action((options) => execute(async () => withRuntime(listJobs(options))));
  jobs
    .command('show <jobId>')
    .description('a job with its audit trail')
    .option('--json', 'machine-readable output')
    .action((id: string, options) => execute(async () => withRuntime(showJob(id, options))));
  jobs
    .command('retry <jobId>')
    .description('re-queue a failed or cancelled job with a fresh attempt budget')
    .option('--json', 'machine-readable output')
    .action((id: string, options) => execute(async () => withRuntime(retryJob(id, options))));
  jobs
    .command('cancel <jobId>')
    .description('cancel a queued or running job')
    .option('--json', 'machine-readable output')
    .action((id: string, options) => execute(async () => withRuntime(cancelJob(id, options))));

  const dlq = program.command('dlq').description('the dead-letter set: jobs that failed their last attempt');
  dlq
    .command('list')
    .description('the dead letters, newest first, with their last error')
    .option('--limit <n>', 'page size (1-1000)', '20')
    .option('--cursor <cursor>', 'continue after a previous page')
    .option('--json', 'machine-readable output')
    .action((options) => execute(async () => withRuntime(listDeadLetters(options))));
  dlq
    .command('replay [jobIds...]')
    .description('put dead-lettered jobs back in the queue')
    .option('--all', 'replay every dead letter (newest first, up to --limit)')
    .option('--limit <n>', 'with --all: how many (1-1000)', '100')
    .option('--json', 'machine-readable output')
    .action((ids: string[], options) => execute(async () => withRuntime(replayDeadLetters(ids, options))));

  const queues = program.command('queues').description('the BullMQ queue');
  queues
    .command('stats')
    .description('depth by state (waiting, prioritized, delayed, active, failed), jobs by status, relay lag')
    .option('--json', 'machine-readable output')
    .action((options) => execute(() => withRuntime((core) => queueStats(core, options))));
  queues.command('pause').description('stop workers taking new jobs').action(() => execute(() => withRuntime(pauseQueue)));
  queues.command('resume').description('let workers take jobs again').action(() => execute(() => withRuntime(resumeQueue)));

  const db = program.command('db').description('PostgreSQL sessions: what a stuck migration or a pile-up waits for');
  db.command('locks')
    .description('sessions holding the migration lock, waiting for a lock, or blocking others')
    .option('--json', 'machine-readable output')
    .action((options) => execute(() => withRuntime((core) => dbLocks(core, options))));
  db.command('cancel <pid>')
    .description('cancel a session\'s running query (pg_cancel_backend)')
    .option('--terminate', 'end the whole session instead (pg_terminate_backend): its transaction rolls back')
    .option('--json', 'machine-readable output')
    .action((pid: string, options) => execute(async () => withRuntime(dbCancel(pid, options))));

  const users = program.command('users').description('accounts and roles');
  users
    .command('create-admin <email>')
    .description('create an admin account, or promote an existing one; the password is read from standard input or asked for, never given as a flag')
    .option('--json', 'machine-readable output')
    .action((address: string, options) => execute(async () => withRuntime(createAdmin(address, options))));
  users
    .command('set-role <email> <role>')
    .description('set an account\'s role (user or admin); its sessions end, so the change holds from the next request')
    .option('--json', 'machine-readable output')
    .action((address: string, role: string, options) => execute(async () => withRuntime(setRole(address, role, options))));

  const keys = program.command('keys').description('access-token signing keys (needs KEY_ENCRYPTION_SECRET)');
  keys
    .command('rotate')
    .description('make a new signing key current; tokens signed with the previous key stay valid')
    .option('--json', 'machine-readable output')
    .action((options) => execute(async () => withRuntime(rotateKeys(options))));

  program
    .command('purge')
    .description('delete finished jobs older than the retention period, with their events and result files (the worker also runs it periodically)')
    .option('--retention-days <days>', 'override JOB_RETENTION_DAYS')
    .option('--json', 'machine-readable output')
    .action((options) => execute(async () => withRuntime(purge(options))));

  program
    .command('reconcile')
    .description('re-enqueue accepted jobs that Redis does not hold, reclaim running jobs whose worker and Redis entry are gone, dead-letter crash loops; says how many jobs each happened to (after a Redis loss or failover)')
    .option('--json', 'machine-readable output')
    .action((options) => execute(() => withRuntime((core) => reconcile(core, options))));

  return program;
}

let exitCode = 0;

async function run(command: () => Promise<number>): Promise<void> {
  try {
    exitCode = await command();
  } catch (error) {
    exitCode = reportFailure(error);
  }
}

function reportFailure(error: unknown): number {
  if (error instanceof UsageError) {
    process.stderr.write(`platform: ${error.message}\n`);
    return 2;
  }
  if (error instanceof EnvError) {
    for (const issue of error.issues) process.stderr.write(`platform: environment variable ${issue.variable} ${issue.message}\n`);
    return 2;
  }
  if (error instanceof DomainError) {
    process.stderr.write(`platform: ${error.message}\n`);
    return 1;
  }
  process.stderr.write(`platform: ${error instanceof Error ? error.message : String(error)}\n`);
  return 1;
}

export async function main(argv: string[]): Promise<number> {
  exitCode = 0;
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    return reportFailure(error);
  }
  return exitCode;
}

/**
 * When whoever reads our output goes away (`platform jobs list | head -1`), the next write
 * fails with EPIPE. Node ignores SIGPIPE, so the stream's error would go unhandled and crash
 * the CLI with a stack trace. A Unix tool is stopped quietly by SIGPIPE there: nobody reads
 * what it would still print, so we stop the same way, with status 0 and no message (which
 * could not be read either when stderr is the same pipe). Any other write error still throws.
 */
function stopQuietlyWhenReaderGoes(stream: NodeJS.WriteStream): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}

if (require.main === module) {
  stopQuietlyWhenReaderGoes(process.stdout);
  stopQuietlyWhenReaderGoes(process.stderr);
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
