import { findJobType, TASK_STATUSES } from '../../contract';
import { listJobEvents } from '../../core/db/job-events';
import { findJob, toJobView } from '../../core/db/jobs';
import { largestJobUsage, recountJobUsage } from '../../core/db/job-usage';
import { inTransaction } from '../../core/db/transaction';
import { listPageForOperators } from '../../core/jobs/service';
import { NotFoundError } from '../../core/errors';
import type { Runtime } from '../../core/runtime';
import * as parse from '../args';
import type { RuntimeAction } from '../context';
import { printJson, printTable, shownValue } from '../output';

export interface ListOptions {
  status?: string;
  type?: string;
  owner?: string;
  limit?: string;
  cursor?: string;
  json?: boolean;
}

export function listJobs(options: ListOptions): RuntimeAction {
  const query = {
    ownerId: options.owner === undefined ? undefined : parse.uuid(options.owner, '--owner'),
    status: parse.jobStatus(options.status),
    type: parse.jobType(options.type),
    limit: parse.limit(options.limit, 20),
    cursor: parse.cursor(options.cursor),
  };
  return async (core) => {
    const page = await listPageForOperators(core.generalPool, query);
    if (options.json) {
      printJson(page);
    } else {
      printTable(
        page.items.map((job) => ({ id: job.id, type: job.type, status: job.status, attempts: `${job.attempts}/${job.maxAttempts}`, owner: job.ownerId, created: job.createdAt, error: job.error })),
        ['id', 'type', 'status', 'attempts', 'owner', 'created', 'error'],
      );
      if (page.nextCursor) process.stdout.write(`next page: --cursor ${page.nextCursor}\n`);
    }
    return 0;
  };
}

async function ownerOf(core: Runtime, id: string): Promise<string> {
  const row = await findJob(core.generalPool, id);
  if (!row) throw new NotFoundError(`job ${id} not found`);
  return row.owner_id;
}

/**
 * The input as an operator may see it: the keys its type declares secret (email.send's text,
 * which carries a live password-reset token until the mail is handed off) are censored, as
 * the logs censor credentials. The job's owner, not the operator, is who the secret is for.
 */
function withoutSecrets(type: string, input: unknown): unknown {
  const secretKeys = findJobType(type)?.secretInputKeys ?? [];
  if (secretKeys.length === 0 || input === null || typeof input !== 'object' || Array.isArray(input)) return input;
  return Object.fromEntries(Object.entries(input).map(([key, value]) => [key, secretKeys.includes(key) ? '[redacted]' : value]));
}

export function showJob(id: string, options: { json?: boolean }): RuntimeAction {
  const jobId = parse.uuid(id);
  return async (core) => {
    const row = await findJob(core.generalPool, jobId);
    if (!row) throw new NotFoundError(`job ${id} not found`);
    // The job's own audit trail; a fan-out job's tasks are summed up by their counts.
    const events = (await listJobEvents(core.generalPool, row.id)).filter((event) => event.jobId === row.id);
    const job = toJobView(row);
    const { tasks, ...view } = { ...job, input: withoutSecrets(job.type, job.input), ownerId: row.owner_id, requestId: row.request_id, idempotencyKey: row.idempotency_key };
    if (options.json) {
      printJson({ job: { ...view, tasks }, events });
      return 0;
    }
    for (const [key, value] of Object.entries(view)) {
      process.stdout.write(`${key.padEnd(15)} ${shownValue(value)}\n`);
    }
    if (tasks) {
      const { failurePolicy, ...counts } = tasks;
      const policy = failurePolicy.mode === 'tolerate' ? `tolerate ${failurePolicy.maxFailed} failed` : 'fail-fast';
      process.stdout.write(`\ntasks (${policy}):\n`);
      printTable([counts], ['total', ...TASK_STATUSES]);
    }
    process.stdout.write('\nevents:\n');
    printTable(events.map((event) => ({ at: event.at, from: event.from, to: event.to, detail: event.detail })), ['at', 'from', 'to', 'detail']);
    return 0;
  };
}

export function retryJob(id: string, options: { json?: boolean }): RuntimeAction {
  const jobId = parse.uuid(id);
  return async (core) => {
    const job = await core.jobs.retry(await ownerOf(core, jobId), jobId);
    if (options.json) printJson({ ...job, input: withoutSecrets(job.type, job.input) });
    else process.stdout.write(`job ${job.id} re-queued (attempt budget ${job.maxAttempts})\n`);
    return 0;
  };
}

export function cancelJob(id: string, options: { json?: boolean }): RuntimeAction {
  const jobId = parse.uuid(id);
  return async (core) => {
    const job = await core.jobs.cancel(await ownerOf(core, jobId), jobId);
    if (options.json) printJson({ ...job, input: withoutSecrets(job.type, job.input) });
    else process.stdout.write(`job ${job.id} cancelled\n`);
    return 0;
  };
}

/**
 * What the owners keeping the most job data keep: what QUOTA_JOBS and QUOTA_JOB_BYTES of
 * the API bound. With `recount`, the usage is first counted again from the jobs table (after
 * rows were deleted or changed by hand), and the owners whose usage was wrong are listed.
 */
export function jobUsage(options: { limit?: string; recount?: boolean; json?: boolean }): RuntimeAction {
  const limit = parse.limit(options.limit, 20);
  return async (core) => {
    const corrected = options.recount ? await inTransaction(core.generalPool, (client) => recountJobUsage(client)) : undefined;
    const owners = await largestJobUsage(core.generalPool, limit);
    if (options.json) {
      printJson({ owners, ...(corrected && { corrected }) });
      return 0;
    }
    if (corrected) {
      process.stdout.write(corrected.length === 0 ? 'recounted: every owner\'s usage was right\n' : `recounted: ${corrected.length} owner(s) corrected\n`);
      if (corrected.length > 0) {
        printTable(
          corrected.map(({ ownerId, was, is }) => ({ owner: ownerId, 'jobs was': was.jobs, 'jobs is': is.jobs, 'bytes was': was.bytes, 'bytes is': is.bytes })),
          ['owner', 'jobs was', 'jobs is', 'bytes was', 'bytes is'],
        );
      }
      process.stdout.write('\n');
    }
    printTable(
      owners.map((owner) => ({ owner: owner.ownerId, email: owner.email, jobs: owner.jobs, bytes: owner.bytes })),
      ['owner', 'email', 'jobs', 'bytes'],
    );
    return 0;
  };
}
