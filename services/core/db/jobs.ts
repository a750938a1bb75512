import { JOB_STATUSES, type JobStatus, type JobSummary, type JobView, type JsonValue, type TaskCounts } from '../../contract';
import { attemptsAfter, auditDetail, deferralsAfter, INITIAL_STATUS, LOST_ATTEMPT_STATUSES, MOVES, QUEUE_HELD_STATUSES, sqlStatuses, sqlStatusList, TASK_REQUEUE_PARENT_STATUSES } from '../jobs/lifecycle';
import { jobUsageCte, nextUsageShard } from './job-usage';
import type { Queryable } from './pool';
import { taskCountCtes, type ParentMove } from './task-counts';

/**
 * The job repository: every statement that reads or writes the jobs table. Statements are
 * named (prepared once per connection) and take whole batches as one JSON document
 * (jsonb_to_recordset), so a batch of any size is one round trip and one plan. A statement
 * that joins such a batch to jobs also names the ids as an array (`id = ANY($n)`): the
 * planner cannot see how few rows a JSON document holds and would otherwise pick a
 * sequential scan of jobs, a cost that grows with the table on every batch.
 */
export interface JobRow {
  id: string;
  owner_id: string;
  type: string;
  input: unknown;
  status: JobStatus;
  attempts: number;
  max_attempts: number;
  priority: number;
  progress: number;
  result: unknown;
  result_file_id: string | null;
  error: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  request_id: string | null;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  parent_id: string | null;
  /** created_at in microseconds since the epoch: exact, unlike a JS Date, so keyset cursors never skip rows. */
  created_us: number;
}

/** A fan-out job's counts, as statements that join job_fanouts read them (all null for other jobs). */
export interface TaskCountColumns {
  tasks_total?: number | null;
  tasks_queued?: number | null;
  tasks_running?: number | null;
  tasks_succeeded?: number | null;
  tasks_failed?: number | null;
  tasks_cancelled?: number | null;
  tasks_max_failed?: number | null;
}

/** The counts columns, from job_fanouts joined as `f` (FANOUT_JOIN). */
const TASK_COUNT_COLUMNS = `f.total AS tasks_total, f.queued AS tasks_queued, f.running AS tasks_running, f.succeeded AS tasks_succeeded,
  f.failed AS tasks_failed, f.cancelled AS tasks_cancelled, f.max_failed AS tasks_max_failed`;
export const FANOUT_JOIN = 'LEFT JOIN job_fanouts f ON f.job_id = jobs.id';

/**
 * When a cancel finished a job, in its UPDATE. Not now(): that is when the statement began,
 * and a cancel may have waited since for the row lock of the job's start, which then wrote
 * a later started_at (a worker's clock, which may also run ahead of the database's).
 */
export const CANCELLED_AT = 'GREATEST(clock_timestamp(), jobs.started_at)';

/**
 * The SET list that starts a job's runs over, in every statement that requeues (a retry, a
 * replay, a fan-out job's tasks and the job itself resumed): one list, so a column added to
 * what a run leaves behind is cleared by all of them. `attempts`: the statement's parameter
 * holding attemptsAfter('requeue').
 */
export function freshRunColumns(attempts: string): string {
  return `attempts = ${attempts}, deferrals = ${deferralsAfter('requeue', 0)}, progress = 0, result = NULL, result_file_id = NULL, error = NULL, started_at = NULL, finished_at = NULL, updated_at = now()`;
}

export function toTaskCounts(row: TaskCountColumns): TaskCounts | null {
  if (row.tasks_total === null || row.tasks_total === undefined) return null;
  const maxFailed = row.tasks_max_failed ?? 0;
  return {
    total: row.tasks_total,
    queued: row.tasks_queued ?? 0,
    running: row.tasks_running ?? 0,
    succeeded: row.tasks_succeeded ?? 0,
    failed: row.tasks_failed ?? 0,
    cancelled: row.tasks_cancelled ?? 0,
    failurePolicy: maxFailed === 0 ? { mode: 'fail-fast' } : { mode: 'tolerate', maxFailed },
  };
}

/** A fan-out job's progress is its finished tasks' share, until its reduce step succeeds. */
function progressOf(status: JobStatus, stored: number, tasks: TaskCounts | null): number {
  if (!tasks || status === MOVES.succeed.to) return stored;
  return Math.floor((1_000 * (tasks.succeeded + tasks.failed + tasks.cancelled)) / tasks.total) / 10;
}

/** Every column of a job but its input and result, which may be megabytes each: what a summary is read from. */
const COLUMNS_BUT_PAYLOADS = `id, owner_id, type, status, attempts, max_attempts, priority, progress, result_file_id,
  error, idempotency_key, request_hash, request_id, created_at, updated_at, started_at, finished_at, parent_id,
  (extract(epoch FROM created_at) * 1000000)::bigint AS created_us`;

const COLUMNS_BUT_INPUT = `${COLUMNS_BUT_PAYLOADS}, result`;

/** The columns a JobRow is read from. */
export const COLUMNS = `input, ${COLUMNS_BUT_INPUT}`;

/** The columns a ListedJobRow is read from (jobs joined to job_fanouts as FANOUT_JOIN): a summary with its task counts. */
export const SUMMARY_COLUMNS = `${COLUMNS_BUT_PAYLOADS}, ${TASK_COUNT_COLUMNS}`;

export function toJobSummary(row: Omit<JobRow, 'input' | 'result'> & TaskCountColumns): JobSummary {
  const tasks = toTaskCounts(row);
  return {
    id: row.id,
    type: row.type,
    status: row.status,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    priority: row.priority,
    progress: progressOf(row.status, row.progress, tasks),
    resultFileId: row.result_file_id,
    error: row.error,
    createdAt: row.created_at.toISOString(),
    startedAt: row.started_at?.toISOString() ?? null,
    finishedAt: row.finished_at?.toISOString() ?? null,
    parentId: row.parent_id,
    tasks,
  };
}

/** The whole job: its summary, then its input and result. */
export function toJobView(row: JobRow & TaskCountColumns): JobView {
  const view = toJobSummary(row) as JobView;
  // jsonb columns: JSON by construction.
  view.input = row.input as JsonValue;
  view.result = (row.result ?? null) as JsonValue;
  return view;
}

export interface NewJob {
  id: string;
  owner_id: string;
  type: string;
  input: unknown;
  max_attempts: number;
  priority: number;
  idempotency_key: string | null;
  request_hash: string | null;
  request_id: string | null;
}

/**
 * A record for a jsonb recordset: `fields`, then `<name>_bytes`, the payload's size as
 * compact JSON in UTF-8 taken from the very text it is sent in (the size costs no second
 * serialization: a MiB of small values takes milliseconds to serialize), then `<name>`, the
 * payload. An undefined payload leaves both out, as JSON.stringify would leave it out.
 */
export function recordWithSizedPayload(fields: Record<string, unknown>, name: 'input' | 'result', payload: unknown): string {
  const head = JSON.stringify(fields);
  const payloadJson: string | undefined = JSON.stringify(payload);
  if (payloadJson === undefined) return head;
  const open = head === '{}' ? '{' : `${head.slice(0, -1)},`;
  return `${open}"${name}_bytes":${Buffer.byteLength(payloadJson)},"${name}":${payloadJson}}`;
}

/**
 * A new job's columns but its input, and `ord`, its place in its batch (which the INSERT
 * keeps), as one object of a fixed shape: V8 keeps such literals on its fast path, not
 * spreads (bench/FINDINGS.md).
 */
export function newJobFields(job: NewJob, ord: number): Record<string, unknown> {
  return {
    ord,
    id: job.id,
    owner_id: job.owner_id,
    type: job.type,
    max_attempts: job.max_attempts,
    priority: job.priority,
    idempotency_key: job.idempotency_key,
    request_hash: job.request_hash,
    request_id: job.request_id,
  };
}

/**
 * Inserts a batch of queued jobs, their creation events and their owners' usage (job-usage.ts)
 * in one statement (one commit).
 * A row whose (owner, idempotency key) already exists is skipped and absent from the
 * result; the caller looks the existing row up. With `startBefore` (epoch ms), a statement
 * the server starts later inserts nothing and fails with 57014 (require_started_before).
 */
export async function insertJobs(db: Queryable, jobs: NewJob[], startBefore?: number): Promise<JobRow[]> {
  const result = await db.query<JobRow>({
    name: 'jobs.insert',
    text: `WITH v AS (
        SELECT * FROM jsonb_to_recordset($1::jsonb) AS v(
          id uuid, owner_id uuid, type text, input jsonb, input_bytes int, max_attempts int, priority int,
          idempotency_key text, request_hash text, request_id text, ord int)
      ),
      inserted AS (
        INSERT INTO jobs (id, owner_id, type, input, input_bytes, status, max_attempts, priority, idempotency_key, request_hash, request_id)
        SELECT id, owner_id, type, input, input_bytes, '${INITIAL_STATUS}', max_attempts, priority, idempotency_key, request_hash, request_id
        FROM v WHERE (SELECT require_started_before(to_timestamp($2::float8 / 1000))) ORDER BY ord
        ON CONFLICT DO NOTHING
        RETURNING ${COLUMNS_BUT_INPUT}, input_bytes
      ),
      events AS (
        INSERT INTO job_events (job_id, from_status, to_status, attempt) SELECT id, NULL, status, 0 FROM inserted
      ),
      changed AS (SELECT owner_id, 1 AS jobs, COALESCE(input_bytes, 0) AS bytes FROM inserted),
      ${jobUsageCte('changed', '$3')}
      SELECT * FROM inserted`,
    values: [`[${jobs.map((job, ord) => recordWithSizedPayload(newJobFields(job, ord), 'input', job.input)).join(',')}]`, startBefore ?? null, nextUsageShard()],
  });
  // The input is the caller's own: not read back, since it may be a MiB of JSON to parse again.
  const inputs = new Map(jobs.map((job) => [job.id, job.input]));
  for (const row of result.rows) row.input = inputs.get(row.id);
  return result.rows;
}

export async function findByIdempotencyKeys(db: Queryable, keys: { ownerId: string; key: string }[]): Promise<JobRow[]> {
  const result = await db.query<JobRow>({
    name: 'jobs.find-by-idempotency-keys',
    text: `SELECT ${COLUMNS} FROM jobs
      WHERE owner_id = ANY ($2::uuid[]) AND idempotency_key = ANY ($3::text[])
        AND (owner_id, idempotency_key) IN (SELECT owner_id, key FROM jsonb_to_recordset($1::jsonb) AS k(owner_id uuid, key text))`,
    values: [
      JSON.stringify(keys.map(({ ownerId, key }) => ({ owner_id: ownerId, key }))),
      keys.map((entry) => entry.ownerId),
      keys.map((entry) => entry.key),
    ],
  });
  return result.rows;
}

/** The job when it exists and (when ownerId is given) belongs to that owner, with its task counts when it fans out. */
export async function findJob(db: Queryable, jobId: string, ownerId?: string): Promise<(JobRow & TaskCountColumns) | undefined> {
  const result = await db.query<JobRow & TaskCountColumns>({
    name: 'jobs.find',
    text: `SELECT ${COLUMNS}, ${TASK_COUNT_COLUMNS} FROM jobs ${FANOUT_JOIN} WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)`,
    values: [jobId, ownerId ?? null],
  });
  return result.rows[0];
}

export interface Keyset {
  /** Microseconds since the epoch. */
  at: number;
  id: string;
}

/** What a list row carries: the summary columns, plus input and result when asked for. */
export interface ListColumns {
  input: boolean;
  result: boolean;
}

/** A job row as lists read it: input and result only when the caller asked for them. */
export type ListedJobRow = Omit<JobRow, 'input' | 'result'> & TaskCountColumns & { input?: unknown; result?: unknown };

/**
 * Jobs newest first, after a keyset position: one owner's (the API) or every owner's (the
 * operator's CLI), with optional status and type filters. Tasks of fan-out jobs are listed
 * by their parent (listTasks), not here, so 10,000 of them do not bury the owner's jobs.
 * Summaries only: a list that shows inputs or results reads them afterwards, a few jobs at
 * a time (readPayloads), as far as its page has room.
 */
export async function listJobs(db: Queryable, filter: { ownerId?: string; status?: JobStatus; type?: string; limit: number; after?: Keyset }): Promise<ListedJobRow[]> {
  const result = await db.query<ListedJobRow>({
    name: 'jobs.list',
    text: `SELECT ${SUMMARY_COLUMNS} FROM jobs ${FANOUT_JOIN}
      WHERE ($1::uuid IS NULL OR owner_id = $1) AND parent_id IS NULL
        AND ($2::text IS NULL OR status = $2)
        AND ($3::text IS NULL OR type = $3)
        AND ($4::bigint IS NULL OR (created_at, id) < (timestamptz 'epoch' + $4::bigint * interval '1 microsecond', $5::uuid))
      ORDER BY created_at DESC, id DESC
      LIMIT $6`,
    values: [filter.ownerId ?? null, filter.status ?? null, filter.type ?? null, filter.after?.at ?? null, filter.after?.id ?? null, filter.limit],
  });
  return result.rows;
}

/** The inputs and/or results of the given jobs, by id; the columns not asked for are not read. */
export async function readPayloads(db: Queryable, ids: readonly string[], columns: ListColumns): Promise<Map<string, { input?: unknown; result?: unknown }>> {
  const parts = [...(columns.input ? ['input'] : []), ...(columns.result ? ['result'] : [])];
  const { rows } = await db.query<{ id: string; input?: unknown; result?: unknown }>({
    name: `jobs.payloads+${parts.join('+')}`,
    text: `SELECT id, ${parts.join(', ')} FROM jobs WHERE id = ANY($1::uuid[])`,
    values: [ids],
  });
  return new Map(rows.map(({ id, ...payload }) => [id, payload]));
}

/** Failed jobs of every owner, most recently failed first, as summaries. The keyset is on finished_at. */
/**
 * The dead-letter set: failed jobs an operator can replay. A failed task belongs to it only
 * while its fan-out job still waits for its tasks; once the job has counted it, the job is
 * what is replayed (or, having succeeded over it, what its failure policy accepted).
 */
const DEAD_LETTER = `jobs.status = 'failed' AND (jobs.parent_id IS NULL OR EXISTS (
    SELECT 1 FROM jobs parent WHERE parent.id = jobs.parent_id AND parent.status IN (${sqlStatuses(TASK_REQUEUE_PARENT_STATUSES)})))`;

/** Dead letters newest first; `type` and `errorContains` narrow them to one type and to errors holding a text. */
export async function listDeadLetters(db: Queryable, filter: { limit: number; after?: Keyset; type?: string; errorContains?: string }): Promise<(ListedJobRow & { finished_us: number })[]> {
  const result = await db.query<ListedJobRow & { finished_us: number }>({
    name: 'jobs.dead-letters',
    text: `SELECT ${SUMMARY_COLUMNS}, (extract(epoch FROM finished_at) * 1000000)::bigint AS finished_us FROM jobs ${FANOUT_JOIN}
      WHERE ${DEAD_LETTER}
        AND ($1::bigint IS NULL OR (jobs.finished_at, jobs.id) < (timestamptz 'epoch' + $1::bigint * interval '1 microsecond', $2::uuid))
        AND ($4::text IS NULL OR jobs.type = $4)
        AND ($5::text IS NULL OR strpos(coalesce(jobs.error, ''), $5) > 0)
      ORDER BY jobs.finished_at DESC, jobs.id DESC
      LIMIT $3`,
    values: [filter.after?.at ?? null, filter.after?.id ?? null, filter.limit, filter.type ?? null, filter.errorContains ?? null],
  });
  return result.rows;
}

/** What cancel and requeue of one job wrote: the row, the status it had, and the fan-out job the move finished, if any. */
export interface SingleMove {
  row: JobRow;
  previous: JobStatus;
  parentMoves: ParentMove[];
}

/**
 * Cancels a job the lifecycle lets cancel (queued, running, or a fan-out job waiting).
 * Returns the updated row and the status it had, or undefined when the job is missing,
 * not the owner's, or past cancelling. A task's parent counts it in the same statement.
 */
export async function cancelJob(db: Queryable, jobId: string, ownerId: string | undefined): Promise<SingleMove | undefined> {
  const result = await db.query<JobRow & { previous_status: JobStatus; parent_moves: ParentMove[] | null }>({
    name: 'jobs.cancel',
    text: `WITH target AS (
        SELECT id AS current_id, status AS previous_status FROM jobs WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2) FOR UPDATE
      ),
      updated AS (
        UPDATE jobs SET status = '${MOVES.cancel.to}', finished_at = ${CANCELLED_AT}, updated_at = now()
        FROM target WHERE jobs.id = current_id AND previous_status IN (${sqlStatusList('cancel')})
        RETURNING ${COLUMNS}, previous_status
      ),
      events AS (
        INSERT INTO job_events (job_id, from_status, to_status, attempt, detail)
        SELECT id, previous_status, status, attempts, $3 FROM updated
      ),
      changed AS (SELECT parent_id, previous_status AS old_status, status AS new_status FROM updated),
      ${taskCountCtes('changed', { moveParents: true })}
      SELECT *, (SELECT json_agg(m) FROM parent_moves m) AS parent_moves FROM updated`,
    values: [jobId, ownerId ?? null, auditDetail({ event: 'cancel' })],
  });
  return singleMove(result.rows[0]);
}

function singleMove(row: (JobRow & { previous_status: JobStatus; parent_moves: ParentMove[] | null }) | undefined): SingleMove | undefined {
  if (!row) return undefined;
  const { previous_status: previous, parent_moves: parentMoves, ...job } = row;
  return { row: job, previous, parentMoves: parentMoves ?? [] };
}

/**
 * A job as a caller read it before deciding to move it: its status and its updated_at in
 * microseconds since the epoch. Every move of a job sets updated_at, so a row that still has
 * both has not moved since. A write given one applies only to such a row.
 */
export interface JobAsRead {
  status: JobStatus;
  updatedUs: number;
}

/**
 * Puts a job the lifecycle lets requeue (failed or cancelled) back in the queue with a
 * fresh attempt budget. Undefined when the job is missing, not the owner's, not in one of
 * those states, or, given `asRead`, no longer as the caller read it (checked on the locked
 * row, in the statement that moves it).
 */
export async function requeueJob(db: Queryable, jobId: string, ownerId: string | undefined, by: 'owner' | 'operator', asRead?: JobAsRead): Promise<SingleMove | undefined> {
  const result = await db.query<JobRow & { previous_status: JobStatus; parent_moves: ParentMove[] | null }>({
    name: 'jobs.requeue',
    text: `WITH target AS (
        SELECT id AS current_id, status AS previous_status, (extract(epoch FROM updated_at) * 1000000)::bigint AS previous_updated_us
        FROM jobs WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2) FOR UPDATE
      ),
      updated AS (
        UPDATE jobs SET status = '${MOVES.requeue.to}', ${freshRunColumns('$4')}
        FROM target WHERE jobs.id = current_id AND previous_status IN (${sqlStatusList('requeue')})
          AND ($5::text IS NULL OR (previous_status = $5 AND previous_updated_us = $6::bigint))
        RETURNING ${COLUMNS}, previous_status
      ),
      events AS (
        INSERT INTO job_events (job_id, from_status, to_status, attempt, detail)
        SELECT id, previous_status, status, 0, $3 FROM updated
      ),
      changed AS (SELECT parent_id, previous_status AS old_status, status AS new_status FROM updated),
      ${taskCountCtes('changed', { moveParents: true })}
      SELECT *, (SELECT json_agg(m) FROM parent_moves m) AS parent_moves FROM updated`,
    values: [jobId, ownerId ?? null, auditDetail({ event: 'requeue', by }), attemptsAfter('requeue', 0), asRead?.status ?? null, asRead?.updatedUs ?? null],
  });
  return singleMove(result.rows[0]);
}

/**
 * What a worker reads before running a delivery: whether the job may still run, and what
 * to run. The queue entry names only the job; type, owner and input come from here. An
 * input over INLINE_INPUT_BYTES is left out (`input` null, `input_inline` false) and read
 * alone by loadInput once the worker has room for it (services/worker/memory-budget.ts).
 */
export type DeliveryRow = Pick<JobRow, 'id' | 'owner_id' | 'type' | 'priority' | 'input' | 'status' | 'attempts' | 'max_attempts' | 'request_id'> & {
  /** When the job was accepted, ms since the epoch. */
  created_ms: number;
  /** The input's size as JSON text, in bytes (for a job written before migration 0009 with an input stored in 256 bytes or less, as stored). */
  input_bytes: number;
  input_inline: boolean;
  /** Times the job's attempts failed on the platform's infrastructure without being charged (see MAX_DEFERRALS). */
  deferrals: number;
  /**
   * While the job runs, when the run it is in started (ms since the epoch, its latest start's
   * audit row): the run a redelivery's start takes over, and names in its write
   * (TransitionRow.latest_start_ms). Null in any other state.
   */
  run_started_ms: number | null;
};

/**
 * When the job `alias` last started: the `at` of its latest start's audit row. Every start
 * writes one, at the time its run names itself by (progress, the other move into running, is
 * not audited). job_events_job_idx reads it backwards from the job's newest event.
 */
function latestStartOf(alias: string): string {
  return `(SELECT e.at FROM job_events e WHERE e.job_id = ${alias}.id AND e.to_status = '${MOVES.start.to}' ORDER BY e.id DESC LIMIT 1)`;
}

/** Inputs up to this size come with the batched delivery read; larger ones are read one by one. */
export const INLINE_INPUT_BYTES = 64 * 1024;

/** One batched read for many deliveries. */
export async function loadDeliveries(db: Queryable, jobIds: string[]): Promise<DeliveryRow[]> {
  const result = await db.query<DeliveryRow>({
    name: 'jobs.deliveries',
    // The size written with the job (migration 0009). A job written before it is measured:
    // a value stored in 256 bytes or less is small whatever it holds (a row that small is not
    // compressed); only a larger one pays for being measured as the text it becomes.
    text: `SELECT j.id, j.owner_id, j.type, j.priority, CASE WHEN size.bytes <= $2 THEN j.input END AS input,
        size.bytes AS input_bytes, size.bytes <= $2 AS input_inline, j.status, j.attempts, j.max_attempts, j.deferrals, j.request_id,
        (extract(epoch FROM j.created_at) * 1000)::float8 AS created_ms,
        CASE WHEN j.status = '${MOVES.start.to}' THEN round(extract(epoch FROM ${latestStartOf('j')}) * 1000)::float8 END AS run_started_ms
      FROM jobs j
      CROSS JOIN LATERAL (
        SELECT COALESCE(j.input_bytes, CASE WHEN pg_column_size(j.input) <= 256 THEN pg_column_size(j.input) ELSE octet_length(j.input::text) END) AS bytes
      ) size
      WHERE j.id = ANY($1::uuid[])`,
    values: [jobIds, INLINE_INPUT_BYTES],
  });
  return result.rows;
}

/** Which of these jobs are cancelled. */
export async function findCancelled(db: Queryable, jobIds: readonly string[]): Promise<string[]> {
  const result = await db.query<{ id: string }>({ name: 'jobs.cancelled-among', text: "SELECT id FROM jobs WHERE id = ANY($1::uuid[]) AND status = 'cancelled'", values: [jobIds] });
  return result.rows.map((row) => row.id);
}

/** A run a live worker stopped because its queue lock lapsed: the job, and when BullMQ added the entry it ran from (the entry's `timestamp`). */
export interface LockLapseRow {
  jobId: string;
  entryAddedAt: number;
}

/**
 * Counts a run of each of these jobs that a live worker stopped because its queue lock
 * lapsed while Redis was away: BullMQ counts that run as one that ended with its worker,
 * and the crash loop count takes it off again (migration 0011). The count is kept for one
 * entry, as BullMQ's is: a lapse from another entry than the one counted starts it again.
 * A running row counts as changed, so the relay's sweep (findStaleRunning) leaves it to the
 * entry's redelivery.
 */
export async function recordLockLapses(db: Queryable, lapses: readonly LockLapseRow[]): Promise<void> {
  await db.query({
    name: 'jobs.record-lock-lapses',
    text: `UPDATE jobs j SET lock_lapses = CASE WHEN j.lock_lapses_entry = l.entry THEN j.lock_lapses + 1 ELSE 1 END, lock_lapses_entry = l.entry,
        updated_at = CASE WHEN j.status IN (${sqlStatuses(LOST_ATTEMPT_STATUSES)}) THEN now() ELSE j.updated_at END
      FROM unnest($1::uuid[], $2::bigint[]) AS l(id, entry) WHERE j.id = l.id`,
    values: [lapses.map((lapse) => lapse.jobId), lapses.map((lapse) => lapse.entryAddedAt)],
  });
}

/**
 * Takes back one run recorded by recordLockLapses for the entry BullMQ added at
 * `entryAddedAt`. A job waiting in the recovery lane has its run recorded so in advance, as
 * its worker ending while it waits would not be its doing, and taken back before it runs.
 */
export async function withdrawLockLapse(db: Queryable, jobId: string, entryAddedAt: number): Promise<void> {
  await db.query({
    name: 'jobs.withdraw-lock-lapse',
    text: 'UPDATE jobs SET lock_lapses = lock_lapses - 1 WHERE id = $1 AND lock_lapses_entry = $2 AND lock_lapses > 0',
    values: [jobId, entryAddedAt],
  });
}

/** Runs of this job a live worker stopped for a lapsed lock on the entry BullMQ added at `entryAddedAt` (see recordLockLapses); 0 for another entry's, or a job that is gone. */
export async function readLockLapses(db: Queryable, jobId: string, entryAddedAt: number): Promise<number> {
  const result = await db.query<{ lapses: number }>({
    name: 'jobs.lock-lapses',
    text: 'SELECT CASE WHEN lock_lapses_entry = $2 THEN lock_lapses ELSE 0 END AS lapses FROM jobs WHERE id = $1',
    values: [jobId, entryAddedAt],
  });
  return result.rows[0]?.lapses ?? 0;
}

/** A job's input, read alone (see DeliveryRow); undefined when the job is gone. */
export async function loadInput(db: Queryable, jobId: string): Promise<unknown> {
  const result = await db.query<{ input: unknown }>({ name: 'jobs.input', text: 'SELECT input FROM jobs WHERE id = $1', values: [jobId] });
  return result.rows[0]?.input;
}

/**
 * One job's net change within a batch: the state it ends in, and the states it may be in
 * now for the change to apply (its first transition's precondition).
 */
export interface TransitionRow {
  id: string;
  expected: readonly JobStatus[];
  status: JobStatus;
  attempt: number;
  attempts: number;
  /** Undefined leaves the column as it is. */
  deferrals?: number;
  progress?: number;
  result?: unknown;
  result_file_id?: string | null;
  /** Undefined leaves the column as it is; null clears it. */
  error?: string | null;
  /** When the run started, ms since the epoch; kept when the row already has one. */
  started_ms?: number;
  /** When the job finished (ms since the epoch), for terminal states; cleared otherwise. */
  finished_ms?: number | null;
  /** Applies only if the row's updated_at (µs) is still this: for writers acting on what they read a while ago (the relay). */
  unchanged_since_us?: number;
  /**
   * Applies only if the job's latest start is still the one at this time (ms since the
   * epoch): a run's writes name its own start, a redelivery's start the run it takes over
   * (DeliveryRow.run_started_ms). A run whose queue entry another worker took (its lock lapsed
   * while its loop stood still or Redis was away) is then refused once that worker's start is
   * written: the same attempt, the job still running, would otherwise take its outcome over
   * the run that holds the job now.
   */
  latest_start_ms?: number;
}

export interface EventRow {
  job_id: string;
  from_status: JobStatus | null;
  to_status: JobStatus;
  attempt: number;
  detail: string | null;
  /** ms since the epoch */
  at_ms: number;
}

export interface AppliedTransitions {
  /** The jobs whose row the batch moved. */
  applied: Set<string>;
  /** Fan-out jobs whose last task the batch finished, moved on by their failure policy. */
  parentMoves: ParentMove[];
}

/**
 * Applies a batch of transitions as one UPDATE … FROM, with their audit rows, in one
 * statement. A row applies only when the job is still in a state its event may move it
 * from (`expected`, from the lifecycle's table) and no newer attempt has started
 * (`attempts <= attempt`): that condition is what keeps a job from completing twice when
 * it is delivered twice. Two deliveries of one attempt (a redelivery after a lapsed lock)
 * are told apart by their starts (`latest_start_ms`). That job_events read sees the
 * statement's snapshot, while a row a concurrent statement moved is rechecked in its new
 * version: a start committed meanwhile would go unseen, so a write naming a run applies only
 * to the row version its snapshot holds (`xmin`). Events are written only for the rows that
 * applied.
 *
 * A row that succeeds stores its result with the result's size, which is added to its
 * owner's usage (job-usage.ts); no move leaves `succeeded`, so a job's result is added once
 * and taken off only when the job is deleted.
 *
 * Tasks of fan-out jobs are locked first (`locked`) so the status each had when the batch
 * moved it is known exactly, and their parents' counts move by the sum in the same
 * statement (taskCountCtes). A batch without tasks locks nothing and counts nothing.
 */
export async function applyTransitions(db: Queryable, transitions: TransitionRow[], events: EventRow[]): Promise<AppliedTransitions> {
  const result = await db.query<{ id: string; moved_to: JobStatus | null; type: string | null; priority: number | null }>({
    name: 'jobs.apply-transitions',
    text: `WITH v AS (
        SELECT * FROM jsonb_to_recordset($1::jsonb) AS v(
          id uuid, expected text, status text, attempt int, attempts int, deferrals int, progress real, result_bytes int, result jsonb,
          result_file_id uuid, error text, set_error boolean, started_ms float8, finished_ms float8, unchanged_since_us bigint, latest_start_ms float8)
      ),
      locked AS (
        SELECT id, status FROM jobs WHERE id = ANY ($3::uuid[]) AND parent_id IS NOT NULL FOR UPDATE
      ),
      updated AS (
        UPDATE jobs j SET
          status = v.status,
          attempts = v.attempts,
          deferrals = COALESCE(v.deferrals, j.deferrals),
          progress = COALESCE(v.progress, j.progress),
          result = CASE WHEN v.status = '${MOVES.succeed.to}' THEN v.result ELSE j.result END,
          result_bytes = CASE WHEN v.status = '${MOVES.succeed.to}' THEN v.result_bytes ELSE j.result_bytes END,
          result_file_id = COALESCE(v.result_file_id, j.result_file_id),
          error = CASE WHEN v.set_error THEN v.error ELSE j.error END,
          started_at = COALESCE(j.started_at, to_timestamp(v.started_ms / 1000)),
          finished_at = to_timestamp(v.finished_ms / 1000),
          updated_at = now()
        FROM v LEFT JOIN locked l ON l.id = v.id
        WHERE j.id = ANY ($3::uuid[]) AND j.id = v.id AND j.status = ANY (string_to_array(v.expected, ',')) AND j.attempts <= v.attempt
          AND (v.unchanged_since_us IS NULL OR (extract(epoch FROM j.updated_at) * 1000000)::bigint = v.unchanged_since_us)
          AND (v.latest_start_ms IS NULL OR (${latestStartOf('j')} = to_timestamp(v.latest_start_ms / 1000)
            AND j.xmin = (SELECT s.xmin FROM jobs s WHERE s.id = j.id)))
        RETURNING j.id, j.parent_id, j.owner_id, l.status AS old_status, j.status AS new_status,
          CASE WHEN j.status = '${MOVES.succeed.to}' THEN j.result_bytes END AS stored_result_bytes
      ),
      ${taskCountCtes('updated', { moveParents: true })},
      results_stored AS (SELECT owner_id, 0 AS jobs, stored_result_bytes AS bytes FROM updated WHERE stored_result_bytes IS NOT NULL),
      ${jobUsageCte('results_stored', '$4')},
      events AS (
        INSERT INTO job_events (job_id, from_status, to_status, attempt, detail, at)
        SELECT e.job_id, e.from_status, e.to_status, e.attempt, e.detail, to_timestamp(e.at_ms / 1000)
        FROM jsonb_to_recordset($2::jsonb) AS e(job_id uuid, from_status text, to_status text, attempt int, detail text, at_ms float8)
        WHERE e.job_id IN (SELECT id FROM updated)
      )
      SELECT id, NULL::text AS moved_to, NULL::text AS type, NULL::int AS priority FROM updated
      UNION ALL SELECT id, status, type, priority FROM parent_moves`,
    values: [
      `[${transitions
        .map((transition) =>
          recordWithSizedPayload(
            {
              id: transition.id,
              expected: transition.expected.join(','),
              status: transition.status,
              attempt: transition.attempt,
              attempts: transition.attempts,
              deferrals: transition.deferrals ?? null,
              progress: transition.progress,
              result_file_id: transition.result_file_id,
              error: transition.error,
              set_error: transition.error !== undefined,
              started_ms: transition.started_ms,
              finished_ms: transition.finished_ms ?? null,
              unchanged_since_us: transition.unchanged_since_us ?? null,
              latest_start_ms: transition.latest_start_ms ?? null,
            },
            'result',
            transition.result,
          ),
        )
        .join(',')}]`,
      JSON.stringify(events),
      transitions.map((transition) => transition.id),
      nextUsageShard(),
    ],
  });
  const applied = new Set<string>();
  const parentMoves: ParentMove[] = [];
  for (const row of result.rows) {
    if (row.moved_to === null) applied.add(row.id);
    else parentMoves.push({ id: row.id, type: row.type as string, priority: row.priority ?? 0, status: row.moved_to });
  }
  return { applied, parentMoves };
}

/** What the relay needs of a row to hand it to BullMQ, and to judge it in a sweep. */
export interface QueueEntryRow {
  id: string;
  type: string;
  priority: number;
  status: JobStatus;
  attempts: number;
  max_attempts: number;
  deferrals: number;
  /** Runs a live worker stopped because their queue lock lapsed while Redis was away, from the entry added at lock_lapses_entry (see recordLockLapses). */
  lock_lapses: number;
  lock_lapses_entry: number | null;
  /** updated_at in microseconds since the epoch: the sweep's keyset, and proof a row did not move. */
  updated_us: number;
}

const QUEUE_ENTRY_COLUMNS = 'id, type, priority, status, attempts, max_attempts, deferrals, lock_lapses, lock_lapses_entry, (extract(epoch FROM updated_at) * 1000000)::bigint AS updated_us';

/** Removes `keys` from a succeeded job's stored input (its type's secretInputKeys). */
export async function removeSecretInput(db: Queryable, jobId: string, keys: readonly string[]): Promise<void> {
  await db.query(`UPDATE jobs SET input = input - $2::text[] WHERE id = $1 AND status = '${MOVES.succeed.to}'`, [jobId, keys]);
}

/**
 * A read of the jobs in `statuses` whose row has not changed for `olderThanMs`, oldest
 * first, after a keyset position: what the relay's sweep walks (see walkStaleRows).
 */
function staleRowsRead(name: string, statuses: readonly JobStatus[]): (db: Queryable, olderThanMs: number, limit: number, after?: Keyset) => Promise<QueueEntryRow[]> {
  const text = `SELECT ${QUEUE_ENTRY_COLUMNS} FROM jobs
      WHERE status IN (${sqlStatuses(statuses)}) AND updated_at < now() - $1::int * interval '1 millisecond'
        AND ($2::bigint IS NULL OR (updated_at, id) > (timestamptz 'epoch' + $2::bigint * interval '1 microsecond', $3::uuid))
      ORDER BY updated_at, id LIMIT $4`;
  return async (db, olderThanMs, limit, after) => {
    const result = await db.query<QueueEntryRow>({ name, text, values: [olderThanMs, after?.at ?? null, after?.id ?? null, limit] });
    return result.rows;
  };
}

/** Jobs waiting in the queue (queued) untouched for `olderThanMs`: rows Redis should hold, the sweep's candidates for a lost hand-off. */
export const findStaleQueued = staleRowsRead('jobs.stale-queued', QUEUE_HELD_STATUSES);

/** Jobs in a state an attempt can be lost in (running) untouched for `olderThanMs`: the sweep's candidates for "worker and queue entry both gone". */
export const findStaleRunning = staleRowsRead('jobs.stale-running', LOST_ATTEMPT_STATUSES);

export async function countByStatus(db: Queryable): Promise<Record<JobStatus, number>> {
  const counts = Object.fromEntries(JOB_STATUSES.map((status) => [status, 0])) as Record<JobStatus, number>;
  const result = await db.query<{ status: JobStatus; count: number }>({
    name: 'jobs.count-by-status',
    text: 'SELECT status, count(*)::bigint AS count FROM jobs GROUP BY status',
  });
  for (const row of result.rows) counts[row.status] = row.count;
  return counts;
}

export async function countDeadLetters(db: Queryable): Promise<number> {
  const result = await db.query<{ count: number }>({
    name: 'jobs.count-dead-letters',
    text: `SELECT count(*)::bigint AS count FROM jobs WHERE ${DEAD_LETTER}`,
  });
  return result.rows[0]?.count ?? 0;
}
