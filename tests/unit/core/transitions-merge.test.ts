import { mergeTransitions, unstorableOutcome } from '../../../services/core/jobs/transitions';

const JOB = '0190a0b0-0000-7000-8000-000000000001';
const OTHER = '0190a0b0-0000-7000-8000-000000000002';

describe('mergeTransitions', () => {
  it('writes a job that starts and succeeds within a batch once, from queued, with both audit rows', () => {
    const merged = mergeTransitions([
      { event: 'start', jobId: JOB, attempt: 1, at: 1_000, from: 'queued' },
      { event: 'progress', jobId: JOB, attempt: 1, progress: 40 },
      { event: 'succeed', jobId: JOB, attempt: 1, at: 2_000, result: { ok: true } },
    ]);
    expect(merged.rows).toEqual([
      expect.objectContaining({ id: JOB, expected: ['queued'], status: 'succeeded', attempts: 1, progress: 100, result: { ok: true }, started_ms: 1_000, finished_ms: 2_000, error: null }),
    ]);
    expect(merged.events.map((event) => [event.from_status, event.to_status])).toEqual([
      ['queued', 'running'],
      ['running', 'succeeded'],
    ]);
    expect(merged.accepted).toEqual([true, true, true]);
  });

  it('takes nothing more for a job already finished in the batch (a second delivery\'s outcome)', () => {
    const merged = mergeTransitions([
      { event: 'succeed', jobId: JOB, attempt: 1, at: 1, result: 1 },
      { event: 'fail', jobId: JOB, attempt: 1, at: 2, error: 'late' },
      { event: 'succeed', jobId: OTHER, attempt: 2, at: 3, result: 2 },
    ]);
    expect(merged.accepted).toEqual([true, false, true]);
    expect(merged.rows.map((row) => [row.id, row.status])).toEqual([
      [JOB, 'succeeded'],
      [OTHER, 'succeeded'],
    ]);
    expect(merged.events).toHaveLength(2);
  });

  it('gives the attempt back on release and keeps the error of a retry', () => {
    const [released] = mergeTransitions([{ event: 'release', jobId: JOB, attempt: 2, at: 5, cause: 'shutdown' }]).rows;
    expect(released).toMatchObject({ status: 'queued', attempts: 1, expected: ['running'], finished_ms: null });
    const retried = mergeTransitions([{ event: 'retry', jobId: JOB, attempt: 1, at: 5, error: 'flaky', retryInMs: 250 }]);
    expect(retried.rows[0]).toMatchObject({ status: 'queued', attempts: 1, error: 'flaky' });
    expect(retried.events[0]?.detail).toBe('attempt 1 failed: flaky; retrying in 250 ms');
  });

  it('a deferral started and ended within the batch: from queued back to queued, the attempt not spent, the deferral counted, the job\'s error saying why the attempt ended', () => {
    const merged = mergeTransitions([
      { event: 'start', jobId: JOB, attempt: 2, at: 1_000, from: 'queued' },
      { event: 'defer', jobId: JOB, attempt: 2, at: 2_000, dependency: 'PostgreSQL', error: 'connect ECONNREFUSED 127.0.0.1:5432', deferrals: 4, retryInMs: 800 },
    ]);
    expect(merged.rows).toEqual([expect.objectContaining({ id: JOB, expected: ['queued'], status: 'queued', attempt: 2, attempts: 1, deferrals: 4, finished_ms: null })]);
    expect(merged.rows[0]?.error).toBe('connect ECONNREFUSED 127.0.0.1:5432');
    expect(merged.events.map((event) => [event.from_status, event.to_status, event.attempt, event.detail])).toEqual([
      ['queued', 'running', 2, null],
      ['running', 'queued', 2, 'attempt 2 not charged: it failed on PostgreSQL, not on the job (connect ECONNREFUSED 127.0.0.1:5432); deferral 4 of 20, running again in 800 ms'],
    ]);
    // Any other event leaves the column as it is.
    expect(mergeTransitions([{ event: 'retry', jobId: JOB, attempt: 1, at: 5, error: 'flaky', retryInMs: 250 }]).rows[0]?.deferrals).toBeUndefined();
  });

  it('stores error texts and audit details without NUL characters', () => {
    const merged = mergeTransitions([{ event: 'fail', jobId: JOB, attempt: 1, at: 1, error: 'bad\u0000header' }]);
    expect(merged.rows[0]?.error).toBe('bad\ufffdheader');
    expect(merged.events[0]?.detail).toBe('bad\ufffdheader');
  });
});

describe('unstorableOutcome', () => {
  const refused = new Error('insert or update on table "jobs" violates foreign key constraint');
  const reason = `the job's outcome could not be stored: ${refused.message}`;
  const trail = (events: { from_status: string | null; to_status: string; detail: string | null }[]) =>
    events.map((event) => [event.from_status, event.to_status, event.detail]);

  it('a job started and finished within the batch: the start stays, and it fails from running, so its audit trail goes on from queued', () => {
    const { row, events } = unstorableOutcome(
      JOB,
      [
        { event: 'start', jobId: JOB, attempt: 1, at: 1_000, from: 'queued' },
        { event: 'progress', jobId: JOB, attempt: 1, progress: 40 },
        { event: 'succeed', jobId: JOB, attempt: 1, at: 2_000, result: { ok: true }, resultFileId: OTHER },
      ],
      refused,
      3_000,
    );
    expect(row).toMatchObject({ id: JOB, expected: ['queued'], status: 'failed', attempts: 1, error: reason, started_ms: 1_000, finished_ms: 3_000 });
    // Nothing of the refused outcome is written again.
    expect(row.result).toBeUndefined();
    expect(row.result_file_id).toBeUndefined();
    expect(row.progress).toBeUndefined();
    expect(trail(events)).toEqual([
      ['queued', 'running', null],
      ['running', 'failed', reason],
    ]);
  });

  it('a job whose outcome alone was in the batch fails from running', () => {
    const { row, events } = unstorableOutcome(JOB, [{ event: 'succeed', jobId: JOB, attempt: 2, at: 5, result: 1 }], refused, 6);
    expect(row).toMatchObject({ expected: ['running'], status: 'failed', attempt: 2, attempts: 2, error: reason });
    expect(trail(events)).toEqual([['running', 'failed', reason]]);
  });

  it('an abandon stays an abandon, with the reason: from queued, where the fail move does not apply', () => {
    const { row, events } = unstorableOutcome(JOB, [{ event: 'abandon', jobId: JOB, attempt: 3, at: 5, reason: 'crash loop', from: 'queued' }], refused, 6);
    expect(row).toMatchObject({ expected: ['queued', 'running'], status: 'failed', attempts: 3, error: reason });
    expect(trail(events)).toEqual([['queued', 'failed', reason]]);
  });

  it('keeps the moves before the last outcome: a release and a second start within the batch', () => {
    const { row, events } = unstorableOutcome(
      JOB,
      [
        { event: 'start', jobId: JOB, attempt: 1, at: 1, from: 'queued' },
        { event: 'release', jobId: JOB, attempt: 1, at: 2, cause: 'shutdown' },
        { event: 'start', jobId: JOB, attempt: 1, at: 3, from: 'queued' },
        { event: 'succeed', jobId: JOB, attempt: 1, at: 4, result: 1 },
      ],
      refused,
      5,
    );
    expect(row).toMatchObject({ expected: ['queued'], status: 'failed', attempts: 1 });
    expect(trail(events).map(([from, to]) => `${from}>${to}`)).toEqual(['queued>running', 'running>queued', 'queued>running', 'running>failed']);
  });
});

