import { z } from 'zod';

import { JOB_STATUSES, TASK_STATUSES } from './job-statuses';
import { JsonValue } from './json-value';

export { JOB_STATUSES, TASK_STATUSES, TERMINAL_STATUSES, type JobStatus, type TaskStatus } from './job-statuses';

export const MAX_PRIORITY = 1_000;

export { JsonValue } from './json-value';

/** The fields of POST /v1/jobs besides type and input; the body schema itself is built from the registry (jobs.ts). */
export const SubmitOptions = {
  maxAttempts: z.number().int().min(1).max(25).optional().meta({ description: 'Attempts in all, the first run included; the type\'s default when absent.' }),
  /** 0 is the most urgent; BullMQ's convention. */
  priority: z.number().int().min(0).max(MAX_PRIORITY).optional().meta({ description: '0 (the default) is the most urgent.' }),
};

/**
 * A page size in a query string: decimal digits only. z.coerce.number() would take what
 * Number() takes (`0x10`, `1e1`, ` 5`, `5.`), so two spellings of one page would be two
 * different requests to a cache and to anyone reading the logs.
 */
export function pageLimit(max: number, fallback: number) {
  const message = `must be a whole number from 1 to ${max}, written in decimal digits`;
  return z
    .preprocess((raw) => (typeof raw === 'string' && /^[0-9]{1,9}$/.test(raw) ? Number(raw) : raw), z.number({ error: message }).int(message).min(1, message).max(max, message))
    .default(fallback);
}

/** A page's `nextCursor`, passed back for the next page: opaque, refused (400) when it is not one a page returned, the empty string included. */
export const PageCursor = z.string().min(1).max(200);

export const IdempotencyKey = z.string().regex(/^[A-Za-z0-9_.:-]{1,255}$/, 'must be 1-255 characters of A-Z a-z 0-9 _ . : -');


/**
 * What a fan-out job does when its tasks fail for good (or are cancelled): `fail-fast`
 * fails it at the first such task and cancels the tasks not yet finished; `tolerate` lets
 * up to `maxFailed` of them fail and runs the reduce step over the rest, failing the job
 * only at one more.
 */
export const FailurePolicy = z
  .discriminatedUnion('mode', [
    z.object({ mode: z.literal('fail-fast') }).strict(),
    z.object({ mode: z.literal('tolerate'), maxFailed: z.number().int().min(0).max(100_000) }).strict(),
  ])
  .meta({ id: 'FailurePolicy', description: 'fail-fast (the default), or tolerate up to maxFailed failed or cancelled tasks.' });
export type FailurePolicy = z.infer<typeof FailurePolicy>;

/** Tasks a fan-out job may have: enough for the benchmark's 10,000 and a file list of that size. */
export const MAX_TASKS = 10_000;

/** How many tasks a failure policy tolerates. */
export function toleratedFailures(policy: FailurePolicy): number {
  return policy.mode === 'tolerate' ? policy.maxFailed : 0;
}

export const TaskCounts = z
  .object({
    total: z.number().int(),
    queued: z.number().int(),
    running: z.number().int(),
    succeeded: z.number().int(),
    failed: z.number().int(),
    cancelled: z.number().int(),
    failurePolicy: FailurePolicy,
  })
  .meta({ id: 'TaskCounts', description: 'A fan-out job\'s tasks by status, and the policy that decides the job when some fail.' });
export type TaskCounts = z.infer<typeof TaskCounts>;

export const JobView = z.object({
  id: z.uuid(),
  type: z.string(),
  status: z.enum(JOB_STATUSES),
  attempts: z.number().int(),
  maxAttempts: z.number().int(),
  priority: z.number().int(),
  progress: z.number().min(0).max(100),
  // JsonValue, not z.unknown(): the OpenAPI generator takes a field that accepts undefined as
  // optional, and a whole job always carries both (result null until there is one).
  input: JsonValue,
  result: JsonValue.nullable(),
  resultFileId: z.uuid().nullable(),
  error: z
    .string()
    .nullable()
    .meta({ description: 'Why the job failed; while it is queued or running again after a failed or lost attempt, why that attempt ended. Null until an attempt ends so, and once the job succeeds.' }),
  createdAt: z.iso.datetime(),
  startedAt: z.iso.datetime().nullable(),
  finishedAt: z.iso.datetime().nullable(),
  /** The fan-out job this job is a task of. */
  parentId: z.uuid().nullable(),
  /**
   * A fan-out job's tasks by status (progress is their finished share); null for any other job.
   * A union rather than `.nullable()`: the OpenAPI generator writes `.nullable()` of a named
   * schema into the component itself, and every other use of TaskCounts (a task page's
   * counts, never null) would then read as nullable too.
   */
  tasks: z.union([TaskCounts, z.null()]),
});
export type JobView = z.infer<typeof JobView>;

/** A job without its input and result: what lists return, so a page's size does not grow with payloads. */
export const JobSummary = JobView.omit({ input: true, result: true });
export type JobSummary = z.infer<typeof JobSummary>;

/** A list item: a summary, with input and result when `include` asked for them. */
export const JobListItem = JobSummary.extend({ input: z.unknown().optional(), result: z.unknown().nullable().optional() });
export type JobListItem = z.infer<typeof JobListItem>;

/**
 * A page of jobs with `include` stops before the item that would take the response past
 * this many bytes (it always holds at least one item); nextCursor continues from there.
 */
export const MAX_LIST_RESPONSE_BYTES = 4 * 1_048_576;

export const ListJobsQuery = z
  .object({
    status: z.enum(JOB_STATUSES).optional(),
    type: z.string().min(1).max(100).optional(),
    limit: pageLimit(100, 20),
    cursor: PageCursor.optional(),
    /** Comma-separated parts to add to each item: `input`, `result` or both. */
    include: z
      .string()
      .regex(/^(input|result)(,(input|result))?$/, 'must be input, result or input,result')
      .optional(),
  })
  .strict();
export type ListJobsQuery = z.infer<typeof ListJobsQuery>;

export const FileView = z.object({
  id: z.uuid(),
  name: z.string(),
  size: z.number().int(),
  contentType: z.string(),
  sha256: z.string(),
  createdAt: z.iso.datetime(),
});
export type FileView = z.infer<typeof FileView>;

export const ListTasksQuery = z
  .object({
    status: z.enum(TASK_STATUSES).optional(),
    limit: pageLimit(1_000, 100),
    cursor: PageCursor.optional(),
  })
  .strict();
export type ListTasksQuery = z.infer<typeof ListTasksQuery>;

/** Job events as audited in job_events and streamed over SSE. */
export const JobEvent = z.object({
  jobId: z.uuid(),
  /** Set on a task's events: the fan-out job it belongs to. */
  parentId: z.uuid().nullable(),
  from: z.enum(JOB_STATUSES).nullable(),
  to: z.enum(JOB_STATUSES),
  at: z.iso.datetime(),
  detail: z.string().nullable(),
});
export type JobEvent = z.infer<typeof JobEvent>;
