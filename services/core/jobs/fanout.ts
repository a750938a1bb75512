import type { Pool, PoolClient } from 'pg';
import { cancelTasks, lockTaskAndParent, requeueTasks, resumeFanOut, type TaskEntry } from '../db/fanouts';
import { isRetryable } from '../db/errors';
import { inTransaction } from '../db/transaction';
import { cancelJob, findJob, requeueJob, toTaskCounts, type JobAsRead, type JobRow, type SingleMove } from '../db/jobs';
import { ConflictError } from '../errors';
import type { ParentMove } from '../db/task-counts';
import type { Logger } from '../logger';
import { deliveryHolder, MOVES, TASK_REQUEUE_PARENT_STATUSES } from './lifecycle';

/**
 * What hands queued rows to BullMQ again (the relay). Declared here, not imported from the
 * relay, because the relay's sweep itself follows the parent moves its repairs make.
 */
export interface Requeuer {
  /** Answers how many of the rows it handed over: 0 when Redis did not take them (they stay queued in PostgreSQL, for the sweep). */
  requeue(rows: readonly Pick<ParentMove, 'id' | 'type' | 'priority'>[], path: 'requeue', options?: { waitForHolder?: boolean }): Promise<number>;
}

/** Who acts on a fan-out job a write moved on. */
export interface ParentMoveDeps {
  /** Cancels a failed job's tasks: a statement over its tasks (by parent_id), not a primary-key lookup, so never the batch pool. */
  generalPool: Pool;
  relay?: Requeuer;
  log: Logger;
}

/**
 * What follows, after commit, from fan-out jobs a write moved on: a reduce step queued is
 * handed to BullMQ; a job failed by its policy has its unfinished tasks cancelled. Both
 * are repaired if this process dies first: the relay's sweep enqueues a queued row Redis
 * lacks, and tasks left running only finish and are counted, the parent staying failed.
 */
export async function followParentMoves(moves: readonly ParentMove[], deps: ParentMoveDeps): Promise<void> {
  const reduced = moves.filter((move) => move.status === MOVES.reduce.to);
  if (reduced.length > 0 && deps.relay) await deps.relay.requeue(reduced, 'requeue');
  for (const move of moves.filter((candidate) => candidate.status === MOVES.failTasks.to)) {
    try {
      const tasks = await withDeadlockRetry(() => cancelTasks(deps.generalPool, move.id));
      deps.log.info({ jobId: move.id, cancelledTasks: tasks.length }, 'fan-out job failed by its policy: unfinished tasks cancelled');
    } catch (error) {
      deps.log.warn({ err: error, jobId: move.id }, 'could not cancel the tasks of a failed fan-out job; they finish and are counted');
    }
  }
}

/**
 * Runs a statement or transaction that moves many tasks at once again when PostgreSQL
 * picks it as a deadlock victim: it locks tasks in id order, a write batch in its own
 * order, so the two can meet.
 */
async function withDeadlockRetry<T>(work: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= attempts || !isRetryable(error) || (error as { code?: string }).code !== '40P01') throw error;
    }
  }
}

/** What a pass of a fan-out transaction answers when it moved the job past tasks a concurrent transaction was still moving: it is rolled back and runs again. */
const OVERTAKEN = Symbol('overtaken');

/** Passes of one fan-out transaction at most; each takes a concurrent cancel or retry of the same job to be overtaken. */
const MAX_PASSES = 5;

/**
 * A transaction over a fan-out job and its tasks (tasks first, the order a write batch
 * locks in). Its work returning undefined (nothing to do, a lost race) leaves nothing of it
 * behind. Its task statement reads the tasks as committed when it starts, so a concurrent
 * cancel or retry of the same job that has moved the tasks but not yet committed goes
 * unseen; the job's own row, locked next, waits for that transaction. A pass that finds
 * afterwards that its move of the job does not fit its tasks answers OVERTAKEN: it is
 * rolled back and run again, and the next pass reads the tasks as the other left them.
 */
async function fanOutTransaction<T>(generalPool: Pool, work: (client: PoolClient) => Promise<T | undefined | typeof OVERTAKEN>): Promise<T | undefined> {
  for (let pass = 1; ; pass += 1) {
    const outcome = await withDeadlockRetry(() =>
      inTransaction(generalPool, work, { commitIf: (result) => result !== undefined && result !== OVERTAKEN }),
    );
    if (outcome !== OVERTAKEN) return outcome;
    if (pass >= MAX_PASSES) throw new ConflictError('The job and its tasks kept changing while this request moved them; try again.');
  }
}

/**
 * Cancels a fan-out job and its unfinished tasks in one transaction. Undefined, and nothing
 * changed, when the job is missing, not the owner's or past cancelling. Returns the tasks
 * that were running, whose workers must be told to stop. A cancelled job has no unfinished
 * task: one left (queued by a retry that committed while this pass ran) overtakes the pass.
 */
export async function cancelFanOut(generalPool: Pool, parentId: string, ownerId: string | undefined): Promise<{ move: SingleMove; runningTasks: string[] } | undefined> {
  return fanOutTransaction(generalPool, async (client) => {
    const tasks = await cancelTasks(client, parentId, ownerId);
    const move = await cancelJob(client, parentId, ownerId);
    if (!move) return undefined;
    const counts = toTaskCounts((await findJob(client, parentId)) ?? {});
    if (counts && counts.queued + counts.running > 0) return OVERTAKEN;
    return { move, runningTasks: tasks.filter((task) => deliveryHolder(task.previous_status) === 'worker').map((task) => task.id) };
  });
}

/**
 * Retries a failed or cancelled fan-out job: only its failed and cancelled tasks are
 * queued again, and it waits for them (or, when all its tasks had succeeded, its reduce
 * step is queued). One transaction; the relay hands the rows to BullMQ after commit. A job
 * waiting again has no failed or cancelled task: one left (cancelled by a cancel that
 * committed while this pass ran) overtakes the pass, which would leave the job waiting for
 * tasks that never run.
 */
export async function retryFanOut(
  generalPool: Pool,
  parentId: string,
  ownerId: string | undefined,
  by: 'owner' | 'operator',
  asRead?: JobAsRead,
): Promise<{ row: JobRow; tasks: TaskEntry[] } | undefined> {
  return fanOutTransaction(generalPool, async (client) => {
    const tasks = await requeueTasks(client, parentId, ownerId);
    // A job no longer as the caller read it is not resumed, and the transaction rolls back its tasks' requeue.
    const resumed = await resumeFanOut(client, parentId, ownerId, tasks.length, by, asRead);
    if (!resumed) return undefined;
    if (resumed.row.status === MOVES.resume.to) {
      const counts = toTaskCounts((await findJob(client, parentId)) ?? {});
      if (counts && counts.failed + counts.cancelled > 0) return OVERTAKEN;
    }
    return { row: resumed.row, tasks };
  });
}

/**
 * Retries a failed or cancelled fan-out job (retryFanOut) and hands what that queued to
 * BullMQ: its failed and cancelled tasks, or its reduce step when every task had succeeded.
 * What its owner's retry and an operator's replay both do: a fan-out job never runs its
 * reduce step over tasks its failure policy failed it for; `by` says which, for the audit
 * trail. Undefined, and nothing changed, when the job is missing, not the owner's, not
 * failed or cancelled, or, given `asRead`, no longer as the caller read it. `handedOver`:
 * whether Redis took what was queued (if not, it is queued in PostgreSQL, for the sweep).
 */
export async function retryFanOutAndHandOver(
  generalPool: Pool,
  relay: Requeuer,
  parentId: string,
  ownerId: string | undefined,
  by: 'owner' | 'operator',
  asRead?: JobAsRead,
): Promise<{ row: JobRow; handedOver: boolean } | undefined> {
  const retried = await retryFanOut(generalPool, parentId, ownerId, by, asRead);
  if (!retried) return undefined;
  // A task that failed a moment ago may still be held by its last delivery.
  let handedOver = (await relay.requeue(retried.tasks, 'requeue', { waitForHolder: true })) === retried.tasks.length;
  if (retried.row.status === MOVES.requeue.to) handedOver = (await relay.requeue([retried.row], 'requeue', { waitForHolder: true })) === 1 && handedOver;
  return { row: retried.row, handedOver };
}

/**
 * Requeues a job that does not fan out (an owner's retry, an operator's replay), a task only
 * while its fan-out job waits for its tasks (requeueTask), and hands it to BullMQ. Queued
 * again the moment it failed or was cancelled, it may still be held by its last delivery.
 * Given `asRead`, only a job still as the caller read it. `handedOver`: whether Redis took
 * it (if not, it is queued in PostgreSQL, for the sweep).
 */
export async function requeueAndHandOver(
  deps: Required<ParentMoveDeps>,
  job: Pick<JobRow, 'id' | 'parent_id'>,
  ownerId: string | undefined,
  by: 'owner' | 'operator',
  asRead?: JobAsRead,
): Promise<(SingleMove & { handedOver: boolean }) | undefined> {
  const move =
    job.parent_id === null ? await requeueJob(deps.generalPool, job.id, ownerId, by, asRead) : await requeueTask(deps.generalPool, job.id, ownerId, by, asRead);
  if (!move) return undefined;
  const handedOver = (await deps.relay.requeue([move.row], 'requeue', { waitForHolder: true })) === 1;
  await followParentMoves(move.parentMoves, deps);
  return { ...move, handedOver };
}

const REQUEUE_VERB = { owner: { act: 'retried', advice: 'Retry' }, operator: { act: 'replayed', advice: 'Replay' } } as const;

/**
 * Requeues one task of a fan-out job (an owner's retry, an operator's replay), as requeueJob
 * does any job, but only while its fan-out job waits for its tasks: afterwards the job has
 * counted the task's outcome (TASK_REQUEUE_PARENT_STATUSES), and the job itself is retried
 * instead. One transaction: the task, the job's counts row and the job's state are locked
 * and read in the order the statements moving tasks take (lockTaskAndParent), so the write
 * finishing the job's last task cannot slip between the check and the requeue. Undefined,
 * and nothing changed, when the task is missing, not the owner's, not failed or cancelled,
 * or, given `asRead`, no longer as the caller read it; a ConflictError when its job is past waiting.
 */
async function requeueTask(generalPool: Pool, taskId: string, ownerId: string | undefined, by: 'owner' | 'operator', asRead?: JobAsRead): Promise<SingleMove | undefined> {
  return inTransaction(generalPool, async (client) => {
    const task = await lockTaskAndParent(client, taskId, ownerId);
    if (!task || !MOVES.requeue.from.includes(task.status) || (asRead && task.status !== asRead.status)) return undefined;
    if (!TASK_REQUEUE_PARENT_STATUSES.includes(task.parentStatus)) {
      const verb = REQUEUE_VERB[by];
      throw new ConflictError(
        `This task can be ${verb.act} alone only while its fan-out job ${task.parentId} waits for its tasks; that job is ${task.parentStatus}. ` +
          `${verb.advice} the fan-out job itself once it is ${MOVES.resume.from.join(' or ')}: its failed and cancelled tasks are queued again.`,
      );
    }
    return requeueJob(client, taskId, ownerId, by, asRead);
  });
}
