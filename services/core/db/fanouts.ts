import type { PoolClient } from 'pg';
import type { JobStatus, TaskStatus } from '../../contract';
import { attemptsAfter, auditDetail, INITIAL_FANOUT_STATUS, INITIAL_STATUS, MOVES, sqlStatusList } from '../jobs/lifecycle';
import { CANCELLED_AT, COLUMNS, FANOUT_JOIN, freshRunColumns, SUMMARY_COLUMNS, type JobAsRead, type JobRow, type Keyset, type ListedJobRow, type NewJob, type TaskCountColumns, newJobFields, recordWithSizedPayload } from './jobs';
import type { Queryable } from './pool';
import { jobUsageCte, nextUsageShard } from './job-usage';
import { taskCountCtes } from './task-counts';

/**
 * The fan-out repository: a parent job and its tasks. Tasks are rows of jobs like any
 * other (parent_id set); what is particular to fan-out is written here, and the counts per
 * task status are kept by taskCountCtes in every statement that moves a task.
 */

export interface NewTask {
  id: string;
  input: unknown;
  max_attempts: number;
}

/** A task as the relay hands it to BullMQ. */
export interface TaskEntry {
  id: string;
  type: string;
  priority: number;
}

/**
 * Inserts a fan-out job (`waiting`), its counts and its tasks (`queued`, the parent's
 * owner, priority and request id), with every creation's audit row and the owner's usage
 * (job-usage.ts), in one statement: the tasks exist exactly when their parent does.
 * Undefined when the parent's idempotency key is already taken (nothing is inserted; the
 * caller looks the earlier job up).
 */
export async function insertFanOut(
  db: Queryable,
  parent: NewJob,
  fanOut: { childType: string; maxFailed: number },
  tasks: NewTask[],
): Promise<(JobRow & TaskCountColumns) | undefined> {
  const result = await db.query<JobRow & TaskCountColumns>({
    name: 'fanouts.insert',
    text: `WITH p AS (
        SELECT * FROM jsonb_to_record($1::jsonb) AS p(
          id uuid, owner_id uuid, type text, input jsonb, input_bytes int, max_attempts int, priority int, idempotency_key text, request_hash text, request_id text)
      ),
      parent AS (
        INSERT INTO jobs (id, owner_id, type, input, input_bytes, status, max_attempts, priority, idempotency_key, request_hash, request_id)
        SELECT id, owner_id, type, input, input_bytes, '${INITIAL_FANOUT_STATUS}', max_attempts, priority, idempotency_key, request_hash, request_id FROM p
        ON CONFLICT DO NOTHING
        RETURNING ${COLUMNS}, input_bytes
      ),
      fanout AS (
        INSERT INTO job_fanouts (job_id, child_type, max_failed, total, queued, running, succeeded, failed, cancelled)
        SELECT id, $3, $4, $5, $5, 0, 0, 0, 0 FROM parent
        RETURNING total AS tasks_total, queued AS tasks_queued, running AS tasks_running, succeeded AS tasks_succeeded,
          failed AS tasks_failed, cancelled AS tasks_cancelled, max_failed AS tasks_max_failed
      ),
      tasks AS (
        INSERT INTO jobs (id, owner_id, type, input, input_bytes, status, max_attempts, priority, request_id, parent_id)
        SELECT t.id, parent.owner_id, $3, t.input, t.input_bytes, '${INITIAL_STATUS}', t.max_attempts, parent.priority, parent.request_id, parent.id
        FROM parent, jsonb_to_recordset($2::jsonb) AS t(id uuid, input jsonb, input_bytes int, max_attempts int, ord int)
        ORDER BY t.ord
        RETURNING id, owner_id, status, input_bytes
      ),
      events AS (
        INSERT INTO job_events (job_id, from_status, to_status, attempt)
        SELECT id, NULL, status, 0 FROM parent UNION ALL SELECT id, NULL, status, 0 FROM tasks
      ),
      changed AS (
        SELECT owner_id, 1 AS jobs, COALESCE(input_bytes, 0) AS bytes FROM parent
        UNION ALL SELECT owner_id, 1, COALESCE(input_bytes, 0) FROM tasks
      ),
      ${jobUsageCte('changed', '$6')}
      SELECT parent.*, fanout.* FROM parent, fanout`,
    values: [
      recordWithSizedPayload(newJobFields(parent, 0), 'input', parent.input),
      `[${tasks.map((task, ord) => recordWithSizedPayload({ id: task.id, max_attempts: task.max_attempts, ord }, 'input', task.input)).join(',')}]`,
      fanOut.childType,
      fanOut.maxFailed,
      tasks.length,
      nextUsageShard(),
    ],
  });
  return result.rows[0];
}

/** The unfinished tasks of a fan-out job cancelled, with their audit rows and counts; returns each with the status it had. */
export async function cancelTasks(db: Queryable, parentId: string, ownerId?: string): Promise<{ id: string; previous_status: JobStatus }[]> {
  const result = await db.query<{ id: string; previous_status: JobStatus }>({
    name: 'fanouts.cancel-tasks',
    text: `WITH target AS (
        SELECT id AS current_id, status AS previous_status FROM jobs
        WHERE parent_id = $1 AND ($2::uuid IS NULL OR owner_id = $2) AND status IN (${sqlStatusList('cancel')})
        ORDER BY id FOR UPDATE
      ),
      updated AS (
        UPDATE jobs SET status = '${MOVES.cancel.to}', finished_at = ${CANCELLED_AT}, updated_at = now()
        FROM target WHERE jobs.id = current_id AND previous_status IN (${sqlStatusList('cancel')})
        RETURNING id, parent_id, previous_status, status, attempts
      ),
      events AS (
        INSERT INTO job_events (job_id, from_status, to_status, attempt, detail)
        SELECT id, previous_status, status, attempts, $3 FROM updated
      ),
      changed AS (SELECT parent_id, previous_status AS old_status, status AS new_status FROM updated),
      ${taskCountCtes('changed', { moveParents: false })}
      SELECT id, previous_status FROM updated`,
    values: [parentId, ownerId ?? null, auditDetail({ event: 'cancel', by: 'parent' })],
  });
  return result.rows;
}

/** The failed and cancelled tasks of a fan-out job queued again with a fresh attempt budget; returns them as the relay enqueues them. */
export async function requeueTasks(db: Queryable, parentId: string, ownerId: string | undefined): Promise<TaskEntry[]> {
  const result = await db.query<TaskEntry>({
    name: 'fanouts.requeue-tasks',
    text: `WITH target AS (
        SELECT id AS current_id, status AS previous_status FROM jobs
        WHERE parent_id = $1 AND ($2::uuid IS NULL OR owner_id = $2) AND status IN (${sqlStatusList('requeue')})
        ORDER BY id FOR UPDATE
      ),
      updated AS (
        UPDATE jobs SET status = '${MOVES.requeue.to}', ${freshRunColumns('$4')}
        FROM target WHERE jobs.id = current_id AND previous_status IN (${sqlStatusList('requeue')})
        RETURNING id, type, priority, parent_id, previous_status, status
      ),
      events AS (
        INSERT INTO job_events (job_id, from_status, to_status, attempt, detail)
        SELECT id, previous_status, status, 0, $3 FROM updated
      ),
      changed AS (SELECT parent_id, previous_status AS old_status, status AS new_status FROM updated),
      ${taskCountCtes('changed', { moveParents: false })}
      SELECT id, type, priority FROM updated`,
    values: [parentId, ownerId ?? null, auditDetail({ event: 'requeue', by: 'parent' }), attemptsAfter('requeue', 0)],
  });
  return result.rows;
}

/**
 * A failed or cancelled fan-out job retried by its owner or replayed by an operator (`by`,
 * recorded in its audit row): waiting again for the tasks requeueTasks just queued
 * (`resume`), or, when every task had succeeded and only its reduce step did not, queued for
 * that step (`requeue`). Undefined when the job is missing, not the owner's, not failed
 * or cancelled, or, given `asRead`, no longer as the caller read it.
 */
export async function resumeFanOut(
  db: Queryable,
  parentId: string,
  ownerId: string | undefined,
  requeuedTasks: number,
  by: 'owner' | 'operator',
  asRead?: JobAsRead,
): Promise<{ row: JobRow; previous: JobStatus } | undefined> {
  const result = await db.query<JobRow & { previous_status: JobStatus }>({
    name: 'fanouts.resume',
    text: `WITH target AS (
        SELECT jobs.id AS current_id, jobs.status AS previous_status, (extract(epoch FROM jobs.updated_at) * 1000000)::bigint AS previous_updated_us,
          f.succeeded = f.total AS all_succeeded
        FROM jobs JOIN job_fanouts f ON f.job_id = jobs.id
        WHERE jobs.id = $1 AND ($2::uuid IS NULL OR jobs.owner_id = $2) FOR UPDATE OF jobs
      ),
      updated AS (
        UPDATE jobs SET status = CASE WHEN all_succeeded THEN '${MOVES.requeue.to}' ELSE '${MOVES.resume.to}' END,
          ${freshRunColumns('$5')}
        FROM target WHERE jobs.id = current_id AND previous_status IN (${sqlStatusList('resume')}) AND previous_status IN (${sqlStatusList('requeue')})
          AND ($6::text IS NULL OR (previous_status = $6 AND previous_updated_us = $7::bigint))
        RETURNING ${COLUMNS}, previous_status
      ),
      events AS (
        INSERT INTO job_events (job_id, from_status, to_status, attempt, detail)
        SELECT id, previous_status, status, 0, CASE WHEN status = '${MOVES.requeue.to}' THEN $3 ELSE $4 END FROM updated
      )
      SELECT * FROM updated`,
    values: [
      parentId,
      ownerId ?? null,
      auditDetail({ event: 'requeue', by }),
      auditDetail({ event: 'resume', tasks: requeuedTasks, by }),
      attemptsAfter('requeue', 0),
      asRead?.status ?? null,
      asRead?.updatedUs ?? null,
    ],
  });
  const row = result.rows[0];
  if (!row) return undefined;
  const { previous_status: previous, ...job } = row;
  return { row: job, previous };
}

/** A task as lockTaskAndParent leaves it: its own state and its fan-out job's. */
export interface LockedTask {
  status: JobStatus;
  parentId: string;
  parentStatus: JobStatus;
}

/**
 * Locks a task, then its fan-out job's counts row, then reads the job's state, in the
 * caller's transaction: the order every statement that moves tasks takes (tasks, counts, the
 * job; see taskCountCtes), so it waits behind them and never deadlocks with them. While the
 * counts row is held no write moves the job on, since each first moves its counts; the job's
 * state is read by a statement of its own once that lock is held, as a statement that waited
 * for it would read the state its snapshot had before the wait. Undefined when the job is
 * missing, not the owner's, or not a task.
 */
export async function lockTaskAndParent(client: PoolClient, taskId: string, ownerId: string | undefined): Promise<LockedTask | undefined> {
  const task = await client.query<{ status: JobStatus; parent_id: string }>({
    name: 'fanouts.lock-task',
    text: 'SELECT status, parent_id FROM jobs WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2) AND parent_id IS NOT NULL FOR UPDATE',
    values: [taskId, ownerId ?? null],
  });
  const locked = task.rows[0];
  if (!locked) return undefined;
  await client.query({ name: 'fanouts.lock-counts', text: 'SELECT 1 FROM job_fanouts WHERE job_id = $1 FOR NO KEY UPDATE', values: [locked.parent_id] });
  const parent = await client.query<{ status: JobStatus }>({ name: 'fanouts.parent-status', text: 'SELECT status FROM jobs WHERE id = $1', values: [locked.parent_id] });
  const parentStatus = parent.rows[0]?.status;
  if (parentStatus === undefined) return undefined;
  return { status: locked.status, parentId: locked.parent_id, parentStatus };
}

/** A page of a fan-out job's tasks in creation order, optionally of one status. */
export async function listTasks(
  db: Queryable,
  filter: { parentId: string; status?: TaskStatus; limit: number; after?: Keyset },
): Promise<ListedJobRow[]> {
  const result = await db.query<ListedJobRow>({
    name: 'fanouts.list-tasks',
    text: `SELECT ${SUMMARY_COLUMNS} FROM jobs ${FANOUT_JOIN}
      WHERE parent_id = $1 AND ($2::text IS NULL OR status = $2)
        AND ($3::bigint IS NULL OR (created_at, id) > (timestamptz 'epoch' + $3::bigint * interval '1 microsecond', $4::uuid))
      ORDER BY created_at, id
      LIMIT $5`,
    values: [filter.parentId, filter.status ?? null, filter.after?.at ?? null, filter.after?.id ?? null, filter.limit],
  });
  return result.rows;
}

/** What a reduce step reads of its tasks: each one's input, outcome and result, in creation order. */
export interface TaskOutcomeRow {
  id: string;
  input: unknown;
  status: JobStatus;
  result: unknown;
  result_file_id: string | null;
  error: string | null;
  created_us: number;
}

export async function listTaskOutcomes(db: Queryable, parentId: string, limit: number, after?: Keyset): Promise<TaskOutcomeRow[]> {
  const result = await db.query<TaskOutcomeRow>({
    name: 'fanouts.task-outcomes',
    text: `SELECT id, input, status, result, result_file_id, error, (extract(epoch FROM created_at) * 1000000)::bigint AS created_us
      FROM jobs
      WHERE parent_id = $1
        AND ($2::bigint IS NULL OR (created_at, id) > (timestamptz 'epoch' + $2::bigint * interval '1 microsecond', $3::uuid))
      ORDER BY created_at, id
      LIMIT $4`,
    values: [parentId, after?.at ?? null, after?.id ?? null, limit],
  });
  return result.rows;
}
