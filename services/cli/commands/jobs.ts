import { decodeCursor, encodeCursor } from '../../core/jobs/cursor';
import { listJobEvents } from '../../core/db/job-events';
import { findJob, toJobView } from '../../core/db/jobs';
import { listJobsAcrossOwners } from '../../core/db/operations';
import { NotFoundError } from '../../core/errors';
import type { PlatformCore } from '../../core/platform';
import * as parse from '../args';
import { printJson, printTable } from '../output';

export interface ListOptions {
  status?: string;
  type?: string;
  owner?: string;
  limit?: string;
  cursor?: string;
  json?: boolean;
}

export async function listJobs(core: PlatformCore, options: ListOptions): Promise<number> {
  const limit = parse.limit(options.limit, 20);
  const rows = await listJobsAcrossOwners(core.pool, {
    ownerId: options.owner === undefined ? undefined : parse.uuid(options.owner, '--owner'),
    status: parse.jobStatus(options.status),
    type: options.type,
    limit: limit + 1,
    after: decodeCursor(options.cursor),
  });
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  const nextCursor = rows.length > limit && last ? encodeCursor({ at: last.created_us, id: last.id }) : null;
  if (options.json) {
    printJson({ items: page.map((row) => ({ ...toJobView(row), ownerId: row.owner_id })), nextCursor });
  } else {
    printTable(
      page.map((row) => ({ id: row.id, type: row.type, status: row.status, attempts: `${row.attempts}/${row.max_attempts}`, owner: row.owner_id, created: row.created_at.toISOString(), error: row.error })),
      ['id', 'type', 'status', 'attempts', 'owner', 'created', 'error'],
    );
    if (nextCursor) process.stdout.write(`next page: --cursor ${nextCursor}\n`);
  }
  return 0;
}

async function ownerOf(core: PlatformCore, id: string): Promise<string> {
  const row = await findJob(core.pool, id);
  if (!row) throw new NotFoundError(`job ${id} not found`);
  return row.owner_id;
}

export async function showJob(core: PlatformCore, id: string, options: { json?: boolean }): Promise<number> {
  const row = await findJob(core.pool, parse.uuid(id));
  if (!row) throw new NotFoundError(`job ${id} not found`);
  const events = await listJobEvents(core.pool, row.id);
  const view = { ...toJobView(row), ownerId: row.owner_id, requestId: row.request_id, idempotencyKey: row.idempotency_key };
  if (options.json) {
    printJson({ job: view, events });
    return 0;
  }
  for (const [key, value] of Object.entries(view)) {
    process.stdout.write(`${key.padEnd(15)} ${value === null || value === undefined ? '-' : typeof value === 'object' ? JSON.stringify(value) : String(value)}\n`);
  }
  process.stdout.write('\nevents:\n');
  printTable(events.map((event) => ({ at: event.at, from: event.from, to: event.to, detail: event.detail })), ['at', 'from', 'to', 'detail']);
  return 0;
}

export async function retryJob(core: PlatformCore, id: string, options: { json?: boolean }): Promise<number> {
  const jobId = parse.uuid(id);
  const job = await core.jobs.retry(await ownerOf(core, jobId), jobId);
  if (options.json) printJson(job);
  else process.stdout.write(`job ${job.id} re-queued (attempt budget ${job.maxAttempts})\n`);
  return 0;
}

export async function cancelJob(core: PlatformCore, id: string, options: { json?: boolean }): Promise<number> {
  const jobId = parse.uuid(id);
  const job = await core.jobs.cancel(await ownerOf(core, jobId), jobId);
  if (options.json) printJson(job);
  else process.stdout.write(`job ${job.id} cancelled\n`);
  return 0;
}
