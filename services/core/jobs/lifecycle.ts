import { JOB_STATUSES, TERMINAL_STATUSES, type JobStatus } from '../../contract';

/**
 * The job lifecycle, declared once: the states (the contract's), the events that move a job,
 * and from which states each event may move it. Everything that changes a job's state reads
 * this table: the SQL preconditions of every write (`writePrecondition`, `sqlStatusList`), the
 * audit trail (`auditDetail`), the worker's decision after an attempt ends
 * (`eventAfterFailedAttempt`), the crash-loop bound both the worker and the relay's sweep
 * apply (`isCrashLoop`), and the relay's reclaim of lost attempts (`eventForLostAttempt`).
 *
 * A job is created `queued` (the submit's INSERT, audited null → queued). From there:
 *
 *   queued ──start──▶ running ──succeed──▶ succeeded
 *     ▲                │ │ └───fail─────▶ failed ──requeue──▶ queued
 *     └─retry/release/─┘ └────cancel────▶ cancelled ──requeue──▶ queued
 *           defer
 *
 * Not drawn: `cancel` applies from queued too; `abandon` moves a queued or running job to
 * failed (a crash loop, or its deferrals spent); `progress` keeps a running job running.
 *
 * An attempt that failed on the platform's own infrastructure (a data store away, the
 * object store answering 5xx) is not the job's doing: `defer` queues it again without
 * spending the attempt, as `release` does, but counts the deferral (`deferrals`), and past
 * MAX_DEFERRALS the job is abandoned instead (eventAfterInfrastructureFailure): one whose
 * own input provokes such a failure every time must not run for ever.
 *
 * A fan-out job is created `waiting` (audited null → waiting) beside its tasks, which are
 * ordinary jobs. The write that finishes its last task moves it on, by its failure policy:
 *
 *   waiting ──reduce──▶ queued (its reduce step runs as a delivery like any other)
 *      │ └──failTasks──▶ failed ──resume──▶ waiting (the failed tasks queued again)
 *      └────cancel─────▶ cancelled ──resume──▶ waiting
 *
 * A task is requeued on its own (retried, replayed) only while its fan-out job waits for
 * its tasks (TASK_REQUEUE_PARENT_STATUSES); after that the job is retried as a whole.
 *
 * A new state goes into the contract's JOB_STATUSES, a new event into LIFECYCLE_EVENTS: tsc
 * then asks for the event's MOVES entry, and the table-driven test
 * (tests/unit/jobs/lifecycle.test.ts) for the new row or column, so every pair's outcome is
 * decided. The rest is asked for by no check (tsc only for the AuditContext of an event a
 * worker reports): an audited event needs its AuditContext variant and auditDetail case;
 * one a worker reports, its WorkerTransition variant and mergeInto case (transitions.ts);
 * one that spends or gives back an attempt or a deferral, attemptsAfter and deferralsAfter.
 */

export const LIFECYCLE_EVENTS = ['start', 'progress', 'succeed', 'fail', 'retry', 'release', 'defer', 'cancel', 'requeue', 'abandon', 'reduce', 'failTasks', 'resume'] as const;
export type LifecycleEvent = (typeof LIFECYCLE_EVENTS)[number];

export interface Move {
  /** The states the job may be in for the event to apply; in any other state it is refused (the write matches no row). */
  from: readonly JobStatus[];
  to: JobStatus;
  /** Whether the move leaves a row in job_events. Progress is frequent and says nothing an auditor needs. */
  audited: boolean;
  /** What the event means, for the audit trail's readers and for the next engineer. */
  meaning: string;
}

export const INITIAL_STATUS: JobStatus = 'queued';
/** A fan-out job waits for its tasks from the start. */
export const INITIAL_FANOUT_STATUS: JobStatus = 'waiting';

export const MOVES: { readonly [Event in LifecycleEvent]: Move } = {
  start: {
    from: ['queued', 'running'],
    to: 'running',
    audited: true,
    meaning: 'a worker begins a delivery; from running it is a redelivery after the previous run lost its worker, and spends no attempt',
  },
  progress: { from: ['running'], to: 'running', audited: false, meaning: 'the processor reports how far it got' },
  succeed: { from: ['running'], to: 'succeeded', audited: true, meaning: 'the processor returned a valid result' },
  fail: { from: ['running'], to: 'failed', audited: true, meaning: 'the attempt failed and no attempt is left (or the error is permanent): dead-lettered' },
  retry: { from: ['running'], to: 'queued', audited: true, meaning: 'the attempt failed and attempts remain: queued again after a backoff' },
  release: {
    from: ['running'],
    to: 'queued',
    audited: true,
    meaning: 'the run ended without an outcome of its own (its worker shut down, or it obeyed a cancel that a retry had overtaken): queued again, the attempt not spent',
  },
  defer: {
    from: ['running'],
    to: 'queued',
    audited: true,
    meaning: 'the attempt failed on the platform\'s own infrastructure, not on the job: queued again after a backoff, the attempt not spent, the deferral counted',
  },
  cancel: { from: ['queued', 'running', 'waiting'], to: 'cancelled', audited: true, meaning: 'the owner or an operator cancelled it (a fan-out job\'s unfinished tasks with it)' },
  requeue: { from: ['failed', 'cancelled'], to: 'queued', audited: true, meaning: 'retried by its owner or replayed by an operator, with a fresh attempt budget' },
  abandon: {
    from: ['queued', 'running'],
    to: 'failed',
    audited: true,
    meaning: 'its runs ended with their worker too many times (a crash loop), or it was deferred MAX_DEFERRALS times: dead-lettered without running again',
  },
  reduce: { from: ['waiting'], to: 'queued', audited: true, meaning: 'a fan-out job\'s tasks are all finished within its failure policy: its reduce step is queued' },
  failTasks: { from: ['waiting'], to: 'failed', audited: true, meaning: 'more of a fan-out job\'s tasks failed or were cancelled than its failure policy tolerates' },
  resume: {
    from: ['failed', 'cancelled'],
    to: 'waiting',
    audited: true,
    meaning: 'a fan-out job retried by its owner or replayed by an operator: its failed and cancelled tasks are queued again and it waits for them',
  },
};

/**
 * The states of a fan-out job in which one of its tasks may be requeued on its own: those in
 * which the job waits for its tasks, the states the write finishing its last task moves it
 * on from (reduce, failTasks). In any other state the job has already counted its tasks'
 * outcomes (its reduce step is queued, running or done, or it failed or was cancelled for
 * them): a task run again then would change counts its state and result no longer follow.
 * Such a job is retried as a whole (resume), which requeues its failed and cancelled tasks.
 */
export const TASK_REQUEUE_PARENT_STATUSES: readonly JobStatus[] = MOVES.reduce.from.filter((status) => MOVES.failTasks.from.includes(status));

const TERMINAL: ReadonlySet<JobStatus> = new Set(TERMINAL_STATUSES);

export function isTerminalStatus(status: JobStatus): boolean {
  return TERMINAL.has(status);
}

/** The state `event` moves a job in `status` to, or undefined when the lifecycle refuses it. */
export function nextStatus(status: JobStatus, event: LifecycleEvent): JobStatus | undefined {
  const move = MOVES[event];
  return move.from.includes(status) ? move.to : undefined;
}

/**
 * The states `event` applies from as a SQL list literal (`'queued', 'running'`), for the
 * precondition of a statement whose text is fixed (a named, prepared statement). Built from
 * the contract's own status names, never from input.
 */
export function sqlStatusList(event: LifecycleEvent): string {
  return sqlStatuses(MOVES[event].from);
}

/** `statuses` as a SQL list literal, for a fixed statement text; the states are the contract's own names. */
export function sqlStatuses(statuses: readonly JobStatus[]): string {
  return statuses.map((status) => `'${status}'`).join(', ');
}

/** Every (state, event) pair: what the table-driven test walks. */
export function allPairs(): { status: JobStatus; event: LifecycleEvent }[] {
  return JOB_STATUSES.flatMap((status) => LIFECYCLE_EVENTS.map((event) => ({ status, event })));
}

/**
 * The states a worker's write of `event` may find its job in. A start is written from the
 * state its delivery read, not from any state a start applies from: a start read from
 * `queued` that finds the job running already was taken by another delivery of the same
 * attempt, or is this very write sent a second time after PostgreSQL took the first and
 * its answer was lost (a stall past the client's query timeout). Either way it must not move
 * the job again, nor add a second `queued → running` row to its audit trail.
 */
export function writePrecondition(event: LifecycleEvent, deliveredFrom?: 'queued' | 'running'): readonly JobStatus[] {
  return event === 'start' && deliveredFrom !== undefined ? [deliveredFrom] : MOVES[event].from;
}

/**
 * Whether a delivery may run, and as which attempt. A queued job starts its next attempt;
 * a running one is a redelivery of the attempt it is in (its worker stopped or lost the lock),
 * which spends nothing; anything else is finished and the delivery is dropped.
 */
export function planDelivery(row: { status: JobStatus; attempts: number }): { attempt: number; from: 'queued' | 'running' } | undefined {
  if (nextStatus(row.status, 'start') === undefined) return undefined;
  return row.status === 'queued' ? { attempt: row.attempts + 1, from: 'queued' } : { attempt: Math.max(1, row.attempts), from: 'running' };
}

/** After an attempt failed: retried while attempts remain, dead-lettered otherwise or when the error says retrying cannot help. */
export function eventAfterFailedAttempt(attempt: { number: number; maxAttempts: number; permanent: boolean }): 'retry' | 'fail' {
  return attempt.permanent || attempt.number >= attempt.maxAttempts ? 'fail' : 'retry';
}

/**
 * How many times a job's attempts may fail on the platform's infrastructure without being
 * charged. Deferrals back off like retries (the type's base, doubled each time, capped at
 * ten minutes), so with a base of a second this rides out an outage of about an hour and a
 * half; a job that meets such a failure on every run is dead-lettered after as many runs.
 */
export const MAX_DEFERRALS = 20;

/**
 * After an attempt failed on the platform's infrastructure (`deferrals`: the job's
 * deferrals before this one): deferred while deferrals remain, abandoned after.
 */
export function eventAfterInfrastructureFailure(deferrals: number): 'defer' | 'abandon' {
  return deferrals >= MAX_DEFERRALS ? 'abandon' : 'defer';
}

/**
 * A running attempt whose worker and queue entry are both gone was lost to the platform,
 * not to the job: a worker that died alone leaves its entry to be redelivered (a crash loop
 * is counted there), so an entry that is gone too means Redis lost it (restarted empty,
 * failed over). It is deferred as an attempt that failed on Redis is: not charged, counted
 * against MAX_DEFERRALS.
 */
export function eventForLostAttempt(row: { deferrals: number }): 'defer' | 'abandon' {
  return eventAfterInfrastructureFailure(row.deferrals);
}

/** What a lost attempt failed on, for its audit row and its dead letter's error. */
export const LOST_ATTEMPT_DEPENDENCY = 'Redis';

/** The states the relay looks for lost attempts in: those from which either event of eventForLostAttempt applies. */
export const LOST_ATTEMPT_STATUSES: readonly JobStatus[] = MOVES.defer.from.filter((status) => MOVES.abandon.from.includes(status));

/**
 * Who holds a job's delivery outside PostgreSQL, by the job's state: a job a delivery may
 * start waits for one in the queue; a job a delivery has started is held by the worker
 * running it; in any other state nothing does. What a cancel must stop besides the row: the
 * queue entry is taken out, the worker told to abort.
 */
export function deliveryHolder(status: JobStatus): 'queue' | 'worker' | undefined {
  if (status === MOVES.start.to) return 'worker';
  return nextStatus(status, 'start') === undefined ? undefined : 'queue';
}

/** The states in which a job's delivery waits in the queue: the rows the relay's sweep expects Redis to hold an entry of. */
export const QUEUE_HELD_STATUSES: readonly JobStatus[] = JOB_STATUSES.filter((status) => deliveryHolder(status) === 'queue');

/** The `attempts` column after the event, given the attempt the event belongs to. */
export function attemptsAfter(event: LifecycleEvent, attempt: number): number {
  if (event === 'requeue') return 0;
  // A release or a deferral gives the attempt back: the worker stopped or the platform
  // failed, the job did nothing wrong.
  if (event === 'release' || event === 'defer') return attempt - 1;
  return attempt;
}

/** The `deferrals` column after the event, given its value before. */
export function deferralsAfter(event: LifecycleEvent, deferrals: number): number {
  if (event === 'requeue') return 0;
  if (event === 'defer') return deferrals + 1;
  return deferrals;
}

export type AuditContext =
  | { event: 'start'; from: JobStatus }
  | { event: 'progress' }
  | { event: 'succeed' }
  | { event: 'fail'; error: string }
  | { event: 'retry'; attempt: number; error: string; retryInMs: number }
  /** `cause` 'overtaken cancel': the run obeyed a cancel of the job, which had been retried since and started by that very run. */
  | { event: 'release'; cause: 'shutdown' | 'overtaken cancel' }
  /** `dependency`: what failed (see infrastructureFailure); `deferral`: the job's deferrals with this one. */
  | { event: 'defer'; attempt: number; dependency: string; error: string; deferral: number; retryInMs: number }
  /** `by` 'parent': a task cancelled with its fan-out job. */
  | { event: 'cancel'; by?: 'request' | 'parent' }
  /** `by` 'parent': a task queued again with its fan-out job. */
  | { event: 'requeue'; by: 'owner' | 'operator' | 'parent' }
  | { event: 'abandon'; reason: string }
  | { event: 'reduce' }
  | { event: 'failTasks' }
  | { event: 'resume'; tasks: number; by: 'owner' | 'operator' };

const REQUEUED_BY = { owner: 'retried by request', operator: 'replayed from the dead-letter set', parent: 'retried with its fan-out job' } as const;

/** The `detail` of the event's audit row (null when the move speaks for itself). */
export function auditDetail(context: AuditContext): string | null {
  switch (context.event) {
    case 'start':
      return context.from === 'running' ? 'redelivered after an interrupted run' : null;
    case 'progress':
    case 'succeed':
      return null;
    case 'fail':
      return context.error;
    case 'retry':
      return `attempt ${context.attempt} failed: ${context.error}; retrying in ${context.retryInMs} ms`;
    case 'release':
      return context.cause === 'shutdown' ? 'released at worker shutdown' : 'released: its run obeyed a cancel that came before the retry it had started';
    case 'defer':
      return `attempt ${context.attempt} not charged: it failed on ${context.dependency}, not on the job (${context.error}); deferral ${context.deferral} of ${MAX_DEFERRALS}, running again in ${context.retryInMs} ms`;
    case 'cancel':
      return context.by === 'parent' ? 'cancelled with its fan-out job' : 'cancelled by request';
    case 'requeue':
      return REQUEUED_BY[context.by];
    case 'abandon':
      return context.reason;
    case 'reduce':
      return 'every task finished within the failure policy: reduce step queued';
    case 'failTasks':
      return 'more tasks failed or were cancelled than the failure policy tolerates';
    case 'resume':
      return `${REQUEUED_BY[context.by]}: ${context.tasks} failed or cancelled tasks queued again`;
  }
}

/**
 * The error a fan-out job that failed by its policy carries. The statement that fails it
 * (taskCountCtes) fills in counts it reads there, so a count may also be a SQL format
 * placeholder (`%s`).
 */
export function tasksFailedReason(counts: { failed: number | string; cancelled: number | string; maxFailed: number | string }): string {
  return `${counts.failed} tasks failed and ${counts.cancelled} were cancelled; the failure policy tolerates ${counts.maxFailed}`;
}

/**
 * Whether a job whose runs ended with their worker `charged` times (the worker died, ran out
 * of memory or blocked its loop past the lock; runs stopped for locks Redis let lapse are not
 * charged) is a crash loop, which is abandoned instead of delivered again. `tolerated`: such
 * runs a job is given, BullMQ's maxStalledCount (STALL_SETTINGS).
 */
export function isCrashLoop(charged: number, tolerated: number): boolean {
  return charged > tolerated;
}

/** Whether, after `charged` such runs, one more would make the job a crash loop (see isCrashLoop). */
export function isLastChanceBeforeCrashLoop(charged: number, tolerated: number): boolean {
  return charged === tolerated;
}

/**
 * What becomes of a job whose own queue entry BullMQ gave up on because its runs kept ending
 * with their worker, `charged` of them counting against the job (crashesCharged; undefined:
 * the entry is gone from Redis and its count with it). A crash loop is abandoned; a job that
 * runs stopped for locks Redis let lapse leave under the bound is queued again in an entry
 * carrying what was charged. The worker that saw BullMQ give up and the relay's sweep (for
 * an entry no worker settled) both decide here.
 */
export type GivenUpPlan = { event: 'abandon'; reason: string } | { event: 'requeue'; crashes: number };

export function planGivenUpEntry(charged: number | undefined, tolerated: number): GivenUpPlan {
  if (charged === undefined) return { event: 'abandon', reason: crashLoopReason(tolerated + 1) };
  return isCrashLoop(charged, tolerated) ? { event: 'abandon', reason: crashLoopReason(charged) } : { event: 'requeue', crashes: charged };
}

/**
 * The runs that count against a job as crashes: those that ended with their worker, less
 * the ones a live worker stopped because Redis let its queue lock lapse (jobs.lock_lapses),
 * which were not the job's doing. An entry carries on (`crashes`) what was charged, so the
 * lapses of one entry are taken off only its own count.
 */
export function crashesCharged(runsEndedWithWorker: number, lockLapses: number): number {
  return Math.max(0, runsEndedWithWorker - lockLapses);
}

/** Why a crash-looping job is dead-lettered: the error its owner reads. */
export function crashLoopReason(runs: number): string {
  return `its run ended with its worker ${runs} times in a row (the worker died, ran out of memory or lost the job's lock each time): not delivered again`;
}

/** Why a job deferred MAX_DEFERRALS times is dead-lettered at its next failure on the infrastructure: the error its owner reads. */
export function deferralsExhaustedReason(deferrals: number, last: { dependency: string; error: string }): string {
  return (
    `its runs failed on the platform's infrastructure ${deferrals + 1} times, the last on ${last.dependency} (${last.error}); ` +
    `the first ${deferrals} were deferred without charging an attempt, and a job that meets such a failure on every run is not delivered again`
  );
}

/** Why the relay takes back a running attempt. */
export const LOST_ATTEMPT_REASON = 'attempt lost: its worker and its queue entry are both gone';
