import { JOB_STATUSES, TERMINAL_STATUSES, type JobStatus } from '../../../services/contract';
import {
  allPairs,
  attemptsAfter,
  auditDetail,
  crashesCharged,
  crashLoopReason,
  deferralsAfter,
  deferralsExhaustedReason,
  deliveryHolder,
  eventAfterFailedAttempt,
  eventAfterInfrastructureFailure,
  eventForLostAttempt,
  isCrashLoop,
  isLastChanceBeforeCrashLoop,
  LIFECYCLE_EVENTS,
  writePrecondition,
  LOST_ATTEMPT_STATUSES,
  MAX_DEFERRALS,
  MOVES,
  nextStatus,
  planDelivery,
  planGivenUpEntry,
  QUEUE_HELD_STATUSES,
  sqlStatuses,
  sqlStatusList,
  TASK_REQUEUE_PARENT_STATUSES,
  tasksFailedReason,
  type LifecycleEvent,
} from '../../../services/core/jobs/lifecycle';

/**
 * The whole lifecycle as a table: for every state (rows) and event (columns), the state the
 * event moves a job to, or '-' where the lifecycle refuses it. A change to MOVES that is
 * not also made here fails this test, so every pair's outcome is a decision someone made.
 */
const EXPECTED: Record<JobStatus, Record<LifecycleEvent, JobStatus | '-'>> = {
  //          start      progress   succeed      fail      retry     release   defer     cancel       requeue   abandon   reduce   failTasks   resume
  queued: { start: 'running', progress: '-', succeed: '-', fail: '-', retry: '-', release: '-', defer: '-', cancel: 'cancelled', requeue: '-', abandon: 'failed', reduce: '-', failTasks: '-', resume: '-' },
  running: { start: 'running', progress: 'running', succeed: 'succeeded', fail: 'failed', retry: 'queued', release: 'queued', defer: 'queued', cancel: 'cancelled', requeue: '-', abandon: 'failed', reduce: '-', failTasks: '-', resume: '-' },
  waiting: { start: '-', progress: '-', succeed: '-', fail: '-', retry: '-', release: '-', defer: '-', cancel: 'cancelled', requeue: '-', abandon: '-', reduce: 'queued', failTasks: 'failed', resume: '-' },
  succeeded: { start: '-', progress: '-', succeed: '-', fail: '-', retry: '-', release: '-', defer: '-', cancel: '-', requeue: '-', abandon: '-', reduce: '-', failTasks: '-', resume: '-' },
  failed: { start: '-', progress: '-', succeed: '-', fail: '-', retry: '-', release: '-', defer: '-', cancel: '-', requeue: 'queued', abandon: '-', reduce: '-', failTasks: '-', resume: 'waiting' },
  cancelled: { start: '-', progress: '-', succeed: '-', fail: '-', retry: '-', release: '-', defer: '-', cancel: '-', requeue: 'queued', abandon: '-', reduce: '-', failTasks: '-', resume: 'waiting' },
};

describe('the job lifecycle', () => {
  it('covers every (state, event) pair', () => {
    expect(allPairs()).toHaveLength(JOB_STATUSES.length * LIFECYCLE_EVENTS.length);
    expect(Object.keys(EXPECTED).sort()).toEqual([...JOB_STATUSES].sort());
    for (const row of Object.values(EXPECTED)) expect(Object.keys(row).sort()).toEqual([...LIFECYCLE_EVENTS].sort());
  });

  it.each(allPairs())('$event from $status', ({ status, event }) => {
    expect(nextStatus(status, event) ?? '-').toBe(EXPECTED[status][event]);
  });

  it('moves nothing out of succeeded; a failed or cancelled job only by requeue (or resume, for a fan-out job)', () => {
    for (const status of TERMINAL_STATUSES) {
      const allowed = LIFECYCLE_EVENTS.filter((event) => nextStatus(status, event) !== undefined);
      expect(allowed).toEqual(status === 'succeeded' ? [] : ['requeue', 'resume']);
    }
  });

  it('requeues a task on its own only while its fan-out job waits for its tasks, before it counted their outcomes', () => {
    expect(TASK_REQUEUE_PARENT_STATUSES).toEqual(['waiting']);
  });

  it('audits who retried a fan-out job: its owner or an operator', () => {
    expect(auditDetail({ event: 'resume', tasks: 3, by: 'owner' })).toBe('retried by request: 3 failed or cancelled tasks queued again');
    expect(auditDetail({ event: 'resume', tasks: 3, by: 'operator' })).toBe('replayed from the dead-letter set: 3 failed or cancelled tasks queued again');
  });

  it('never delivers a fan-out job while it waits for its tasks', () => {
    expect(planDelivery({ status: 'waiting', attempts: 0 })).toBeUndefined();
  });

  it('writes SQL preconditions from the table, never anything else', () => {
    expect(sqlStatusList('cancel')).toBe("'queued', 'running', 'waiting'");
    expect(sqlStatusList('requeue')).toBe("'failed', 'cancelled'");
    for (const event of LIFECYCLE_EVENTS) expect(sqlStatusList(event)).toBe(MOVES[event].from.map((status) => `'${status}'`).join(', '));
  });

  it('plans a delivery: a queued job starts its next attempt, a running one re-runs its attempt, a finished one is dropped', () => {
    expect(planDelivery({ status: 'queued', attempts: 0 })).toEqual({ attempt: 1, from: 'queued' });
    expect(planDelivery({ status: 'queued', attempts: 2 })).toEqual({ attempt: 3, from: 'queued' });
    expect(planDelivery({ status: 'running', attempts: 2 })).toEqual({ attempt: 2, from: 'running' });
    for (const status of TERMINAL_STATUSES) expect(planDelivery({ status, attempts: 1 })).toBeUndefined();
  });

  it('decides after a failed attempt: retry while attempts remain, dead-letter at the last or on a permanent error', () => {
    expect(eventAfterFailedAttempt({ number: 1, maxAttempts: 3, permanent: false })).toBe('retry');
    expect(eventAfterFailedAttempt({ number: 3, maxAttempts: 3, permanent: false })).toBe('fail');
    expect(eventAfterFailedAttempt({ number: 1, maxAttempts: 3, permanent: true })).toBe('fail');
    // A lost attempt is Redis's doing, not the job's: deferred, whatever attempts are left, until the deferrals run out.
    expect(eventForLostAttempt({ deferrals: 0 })).toBe('defer');
    expect(eventForLostAttempt({ deferrals: MAX_DEFERRALS - 1 })).toBe('defer');
    expect(eventForLostAttempt({ deferrals: MAX_DEFERRALS })).toBe('abandon');
  });

  it('bounds crash loops once for the worker and the sweep: past the runs tolerated a job is abandoned, at them it has one chance left', () => {
    expect([0, 1, 2, 3, 4].map((charged) => isCrashLoop(charged, 2))).toEqual([false, false, false, true, true]);
    expect([0, 1, 2, 3].map((charged) => isLastChanceBeforeCrashLoop(charged, 2))).toEqual([false, false, true, false]);
    // A crash loop ends by abandon, which applies where such a job is found: queued (its entry given up on) or running.
    expect(nextStatus('queued', 'abandon')).toBe('failed');
    expect(nextStatus('running', 'abandon')).toBe('failed');
  });

  it('takes the runs stopped for locks Redis let lapse off the runs that ended with their worker, never below none', () => {
    expect(crashesCharged(3, 0)).toBe(3);
    expect(crashesCharged(3, 2)).toBe(1);
    expect(crashesCharged(3, 3)).toBe(0);
    // More lapses recorded than runs counted: an entry lost with Redis's data after its lapse.
    expect(crashesCharged(1, 4)).toBe(0);
  });

  it('decides a given-up entry once for the worker and the sweep: a crash loop is abandoned with its count, a job lapses excuse is queued again carrying what was charged', () => {
    expect(planGivenUpEntry(3, 2)).toEqual({ event: 'abandon', reason: crashLoopReason(3) });
    expect(planGivenUpEntry(5, 2)).toEqual({ event: 'abandon', reason: crashLoopReason(5) });
    expect(planGivenUpEntry(2, 2)).toEqual({ event: 'requeue', crashes: 2 });
    expect(planGivenUpEntry(0, 2)).toEqual({ event: 'requeue', crashes: 0 });
    // The entry is gone from Redis with its count: BullMQ gave up on it, so at least one run past the bound.
    expect(planGivenUpEntry(undefined, 2)).toEqual({ event: 'abandon', reason: crashLoopReason(3) });
  });

  it('counts attempts: a release or a deferral gives its attempt back, a requeue starts over', () => {
    expect(attemptsAfter('start', 2)).toBe(2);
    expect(attemptsAfter('retry', 2)).toBe(2);
    expect(attemptsAfter('release', 2)).toBe(1);
    expect(attemptsAfter('defer', 2)).toBe(1);
    expect(attemptsAfter('abandon', 2)).toBe(2);
    expect(attemptsAfter('requeue', 5)).toBe(0);
  });

  it('counts deferrals: each deferral one more, a requeue starts over, every other event leaves the count', () => {
    for (const event of LIFECYCLE_EVENTS) {
      const expected = event === 'defer' ? 4 : event === 'requeue' ? 0 : 3;
      expect(deferralsAfter(event, 3)).toBe(expected);
    }
  });

  it('decides after an attempt failed on the infrastructure: deferred while deferrals remain, abandoned after', () => {
    expect(eventAfterInfrastructureFailure(0)).toBe('defer');
    expect(eventAfterInfrastructureFailure(MAX_DEFERRALS - 1)).toBe('defer');
    expect(eventAfterInfrastructureFailure(MAX_DEFERRALS)).toBe('abandon');
    // Both moves apply where a failed attempt ends: a running job.
    expect(nextStatus('running', 'defer')).toBe('queued');
    expect(nextStatus('running', 'abandon')).toBe('failed');
  });

  it('audits a deferral as an attempt not charged, with what failed; and says why the bound dead-letters', () => {
    expect(auditDetail({ event: 'defer', attempt: 2, dependency: 'PostgreSQL', error: 'timeout exceeded when trying to connect', deferral: 3, retryInMs: 1_500 })).toBe(
      `attempt 2 not charged: it failed on PostgreSQL, not on the job (timeout exceeded when trying to connect); deferral 3 of ${MAX_DEFERRALS}, running again in 1500 ms`,
    );
    expect(deferralsExhaustedReason(MAX_DEFERRALS, { dependency: 'the object store', error: 'Please reduce your request rate.' })).toBe(
      `its runs failed on the platform's infrastructure ${MAX_DEFERRALS + 1} times, the last on the object store (Please reduce your request rate.); ` +
        `the first ${MAX_DEFERRALS} were deferred without charging an attempt, and a job that meets such a failure on every run is not delivered again`,
    );
  });

  it('looks for lost attempts only where both of their outcomes (defer, abandon) apply', () => {
    expect(LOST_ATTEMPT_STATUSES).toEqual(['running']);
    expect(sqlStatuses(LOST_ATTEMPT_STATUSES)).toBe("'running'");
  });

  it('says who holds a job\'s delivery: the queue while a start may take it, the worker once started, nobody otherwise', () => {
    const holders = Object.fromEntries(JOB_STATUSES.map((status) => [status, deliveryHolder(status) ?? '-']));
    expect(holders).toEqual({ queued: 'queue', running: 'worker', waiting: '-', succeeded: '-', failed: '-', cancelled: '-' });
  });

  it('expects a queue entry of a job exactly where the queue holds its delivery', () => {
    expect(QUEUE_HELD_STATUSES).toEqual(['queued']);
    for (const status of JOB_STATUSES) expect(QUEUE_HELD_STATUSES.includes(status)).toBe(deliveryHolder(status) === 'queue');
  });

  it('writes a start only from the state its delivery read, so a start sent twice, or a second delivery of one attempt, moves the job once', () => {
    expect(writePrecondition('start', 'queued')).toEqual(['queued']);
    expect(writePrecondition('start', 'running')).toEqual(['running']);
    for (const event of LIFECYCLE_EVENTS.filter((candidate) => candidate !== 'start')) expect(writePrecondition(event)).toEqual(MOVES[event].from);
  });

  it('words a fan-out job\'s policy failure once, for counts or for the SQL format that fills them in', () => {
    expect(tasksFailedReason({ failed: 3, cancelled: 1, maxFailed: 2 })).toBe('3 tasks failed and 1 were cancelled; the failure policy tolerates 2');
    expect(tasksFailedReason({ failed: '%s', cancelled: '%s', maxFailed: '%s' })).toBe('%s tasks failed and %s were cancelled; the failure policy tolerates %s');
  });
});
