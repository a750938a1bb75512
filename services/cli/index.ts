#!/usr/bin/env node
import { Command, CommanderError, type OutputConfiguration } from 'commander';
import { JOB_STATUSES } from '../contract';
import { cancelJob, jobUsage, listJobs, retryJob, showJob } from './commands/jobs';
import { doctor, doctorStack } from './commands/doctor';
import { listDeadLetters, replayDeadLetters } from './commands/dlq';
import { dbCancel, dbConnections, dbLocks } from './commands/db';
import { createAdmin, disableUser, enableUser, purge, rotateKeys, setRole, showUser } from './commands/identity';
import { migrate } from './commands/migrate';
import { pauseQueue, queueStats, reconcile, resumeQueue } from './commands/queues';
import { KNOWN_JOB_TYPES } from './args';
import { withRuntime, type RuntimeAction, type RuntimeOptions } from './context';
import { EXIT, reportFailure } from './failure';
import { UsageError } from './output';

/** Runs a parsed command; tests pass one that records instead, to parse without side effects. */
export type Executor = (command: () => Promise<number>) => Promise<void>;

const EXIT_STATUS_HELP = `
Exit status (every command):
  0  done; doctor: healthy
  1  failed, unhealthy, or done only in part (dlq replay: some jobs were not replayed or not handed to Redis;
     reconcile: accepted jobs are still missing from Redis after it)
  2  bad usage or configuration: nothing was connected to or changed

With --json, the answer is JSON on standard output, and an error is one JSON object on
standard error: {"error": {"kind", "message", "exitCode"}}, kind being usage, environment,
not-found, conflict, unavailable or failed.`;

/**
 * A command that runs against the data stores. Its flags are parsed here, while the command
 * line is parsed (a bad one is refused before anything connects, and a runbook's command
 * that only parses is checked with its values); the connecting happens when it is run.
 */
function connected(action: RuntimeAction, options?: RuntimeOptions): () => Promise<number> {
  return () => withRuntime(action, options);
}

/**
 * Commands whose work is in Redis (the BullMQ queue): without it they would wait for it
 * forever, or report nothing done; a replay would move its first job and leave the rest.
 */
const QUEUE_WORK: RuntimeOptions = { needs: ['postgres', 'redis'] };

/**
 * `platform`: the operator's CLI. Runbooks call these sub-commands, never ad-hoc scripts.
 * `output` replaces commander's own writing (usage errors, help), as --json does for errors.
 */
export function buildProgram(execute: Executor, output?: OutputConfiguration): Command {
  const program = new Command('platform')
    .description('Operate the Platform Kit job platform (reads DATABASE_URL, REDIS_URL, QUEUE_PREFIX, … from the environment)')
    .showHelpAfterError()
    .exitOverride()
    .addHelpText('after', EXIT_STATUS_HELP);
  // Before any sub-command is added: each copies these settings from its parent when created.
  if (output) program.configureOutput(output);

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
    .action((options) => {
      if (options.stack === undefined && (options.kubeApi !== undefined || options.prometheusUrl !== undefined)) throw new UsageError('--kube-api and --prometheus-url need --stack');
      // Doctor asks for no data store up front: it reports on each itself.
      const reporting: RuntimeOptions = { needs: [] };
      return execute(options.stack === undefined ? connected(doctor(options), reporting) : doctorStack(options, (action) => withRuntime(action, reporting)));
    });

  const jobs = program.command('jobs').description('inspect and act on jobs of every owner');
  jobs
    .command('list')
    .description('jobs of every owner, newest first, a page at a time')
    .option('--status <status>', `only jobs in this status: ${JOB_STATUSES.join(', ')}`)
    .option('--type <type>', `only jobs of this type: ${KNOWN_JOB_TYPES.join(', ')}`)
    .option('--owner <userId>', 'only this owner\'s jobs')
    .option('--limit <n>', 'page size (1-1000)', '20')
    .option('--cursor <cursor>', 'continue after a previous page')
    .option('--json', 'machine-readable output')
    .action((options) => execute(connected(listJobs(options))));
  jobs
    .command('show <jobId>')
    .description('a job with its audit trail')
    .option('--json', 'machine-readable output')
    .action((id: string, options) => execute(connected(showJob(id, options))));
  jobs
    .command('retry <jobId>')
    .description('re-queue a failed or cancelled job with a fresh attempt budget')
    .option('--json', 'machine-readable output')
    .action((id: string, options) => execute(connected(retryJob(id, options))));
  jobs
    .command('cancel <jobId>')
    .description('cancel a queued or running job')
    .option('--json', 'machine-readable output')
    .action((id: string, options) => execute(connected(cancelJob(id, options))));
  jobs
    .command('usage')
    .description('the owners keeping the most job data (jobs, and bytes of inputs and results), against QUOTA_JOBS and QUOTA_JOB_BYTES')
    .option('--limit <n>', 'how many owners (1-1000)', '20')
    .option('--recount', 'count every owner\'s usage again from the jobs table first (after rows were deleted or changed by hand) and list what was corrected')
    .option('--json', 'machine-readable output')
    .action((options) => execute(connected(jobUsage(options))));

  const dlq = program.command('dlq').description('the dead-letter set: jobs that failed their last attempt');
  dlq
    .command('list')
    .description('the dead letters, newest first, with their last error')
    .option('--type <type>', `only dead letters of this type: ${KNOWN_JOB_TYPES.join(', ')}`)
    .option('--error <text>', 'only dead letters whose error contains this text (as printed, case-sensitive)')
    .option('--limit <n>', 'page size (1-1000)', '20')
    .option('--cursor <cursor>', 'continue after a previous page')
    .option('--json', 'machine-readable output')
    .action((options) => execute(connected(listDeadLetters(options))));
  dlq
    .command('replay [jobIds...]')
    .description(
      'put dead-lettered jobs back in the queue, as they stood when it began (one replayed or failed again since is skipped); once Redis does not take a job, the rest are left dead-lettered; one replay runs at a time',
    )
    .option('--all', 'replay every dead letter (newest first, up to --limit), or with --type and --error those dlq list shows with the same flags')
    .option('--type <type>', 'with --all: only dead letters of this type')
    .option('--error <text>', 'with --all: only dead letters whose error contains this text (as printed, case-sensitive)')
    .option('--limit <n>', 'with --all: how many (1-1000; default 100)')
    .option('--json', 'machine-readable output')
    .action((ids: string[], options) => execute(connected(replayDeadLetters(ids, options), QUEUE_WORK)));

  const queues = program.command('queues').description('the BullMQ queue');
  queues
    .command('stats')
    .description('depth by state (waiting, prioritized, delayed, active, failed), jobs by status, relay lag')
    .option('--json', 'machine-readable output')
    .action((options) => execute(connected((core) => queueStats(core, options), QUEUE_WORK)));
  queues
    .command('pause')
    .description('stop workers taking new jobs')
    .option('--json', 'machine-readable output')
    .action((options) => execute(connected((core) => pauseQueue(core, options), QUEUE_WORK)));
  queues
    .command('resume')
    .description('let workers take jobs again')
    .option('--json', 'machine-readable output')
    .action((options) => execute(connected((core) => resumeQueue(core, options), QUEUE_WORK)));

  const db = program.command('db').description('PostgreSQL sessions: what a stuck migration or a pile-up waits for');
  db.command('locks')
    .description('sessions holding the migration lock, waiting for a lock, or blocking others')
    .option('--json', 'machine-readable output')
    .action((options) => execute(connected((core) => dbLocks(core, options))));
  db.command('connections')
    .description('who holds the server\'s connections: client sessions by application, user, client and state, against max_connections, with pids')
    .option('--json', 'machine-readable output')
    .action((options) => execute(connected((core) => dbConnections(core, options))));
  db.command('cancel <pid>')
    .description('cancel a session\'s running query (pg_cancel_backend)')
    .option('--terminate', 'end the whole session instead (pg_terminate_backend): its transaction rolls back')
    .option('--json', 'machine-readable output')
    .action((pid: string, options) => execute(connected(dbCancel(pid, options))));

  const users = program.command('users').description('accounts and roles (needs KEY_ENCRYPTION_SECRET)');
  users
    .command('create-admin <email>')
    .description('create an admin account, or promote an existing one; the password is read from standard input or asked for, never given as a flag')
    .option('--json', 'machine-readable output')
    .action((address: string, options) => execute(connected(createAdmin(address, options))));
  users
    .command('set-role <email> <role>')
    .description('set an account\'s role (user or admin); its sessions end, so the change holds from the next request; the last enabled admin is not demoted')
    .option('--reason <text>', 'why, kept in the account\'s audit trail (users show)')
    .option('--json', 'machine-readable output')
    .action((address: string, role: string, options) => execute(connected(setRole(address, role, options))));
  users
    .command('disable <email>')
    .description('lock an account out: sign-in, refresh and password reset refuse it, its sessions end and its access tokens are refused at once; its queued jobs keep running; the last enabled admin is not disabled')
    .option('--reason <text>', 'why (a ticket, who asked), kept in the account\'s audit trail (users show)')
    .option('--json', 'machine-readable output')
    .action((address: string, options) => execute(connected(disableUser(address, options))));
  users
    .command('enable <email>')
    .description('let a disabled account sign in again (the sessions the disable ended stay ended)')
    .option('--reset-password', 'for an account whose password someone else may know: replace it with one nobody knows and mail the owner a reset token, the only way back in')
    .option('--reason <text>', 'why, kept in the account\'s audit trail (users show)')
    .option('--json', 'machine-readable output')
    .action((address: string, options) => execute(connected(enableUser(address, options))));
  users
    .command('show <email>')
    .description('an account\'s role and whether it is disabled, with the newest operator actions on it (who, when, why)')
    .option('--json', 'machine-readable output')
    .action((address: string, options) => execute(connected(showUser(address, options))));

  const keys = program.command('keys').description('access-token signing keys (needs KEY_ENCRYPTION_SECRET)');
  keys
    .command('rotate')
    .description('make a new signing key current; tokens signed with the previous key stay valid')
    .option('--json', 'machine-readable output')
    .action((options) => execute(connected(rotateKeys(options))));

  program
    .command('purge')
    .description('delete finished jobs older than the retention period, with their events and result files, and expired sessions and tokens (the worker also runs it periodically)')
    .option('--retention-days <days>', 'override JOB_RETENTION_DAYS')
    .option('--json', 'machine-readable output')
    .action((options) => execute(connected(purge(options))));

  program
    .command('reconcile')
    .description('re-enqueue accepted jobs that Redis does not hold, reclaim running jobs whose worker and Redis entry are gone, dead-letter crash loops; says how many jobs each happened to (after a Redis loss or failover); exit 1 when accepted jobs are still missing from Redis after it (Redis refused them)')
    .option('--json', 'machine-readable output')
    .action((options) => execute(connected((core) => reconcile(core, options), QUEUE_WORK)));

  return program;
}

/** --json anywhere before a `--` that ends the options: errors are then JSON too, also those found while parsing. */
function asksForJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

export async function main(argv: string[]): Promise<number> {
  const json = asksForJson(argv);
  let status: number = EXIT.ok;
  const execute: Executor = async (command) => {
    status = await command();
  };
  // With --json, commander's own error text (and the help it adds) would be the only thing on standard error that is not JSON.
  const program = buildProgram(execute, json ? { writeErr: () => undefined, outputError: () => undefined } : undefined);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return status;
  } catch (error) {
    if (error instanceof CommanderError && error.exitCode === 0) return EXIT.ok;
    // Commander has said what was wrong, with the usage, on standard error.
    if (error instanceof CommanderError && !json) return EXIT.usage;
    return reportFailure(error, json);
  }
}

/**
 * Exits once what was written is flushed. A command is over when main resolves, but a library
 * may still hold a socket or a timer after a failure, and the CLI would wait on it for as long.
 */
function exitOnceWritten(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
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
  void main(process.argv.slice(2)).then(exitOnceWritten);
}
