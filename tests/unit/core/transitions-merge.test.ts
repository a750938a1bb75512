import { mergeTransitions } from '../../../services/core/jobs/transitions';

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
      expect.objectContaining({ id: JOB, expected: ['queued', 'running'], status: 'succeeded', attempts: 1, progress: 100, result: { ok: true }, started_ms: 1_000, finished_ms: 2_000, error: null }),
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
    const [released] = mergeTransitions([{ event: 'release', jobId: JOB, attempt: 2, at: 5 }]).rows;
    expect(released).toMatchObject({ status: 'queued', attempts: 1, expected: ['running'], finished_ms: null });
    const retried = mergeTransitions([{ event: 'retry', jobId: JOB, attempt: 1, at: 5, error: 'flaky', retryInMs: 250 }]);
    expect(retried.rows[0]).toMatchObject({ status: 'queued', attempts: 1, error: 'flaky' });
    expect(retried.events[0]?.detail).toBe('attempt 1 failed: flaky; retrying in 250 ms');
  });

  it('stores error texts and audit details without NUL characters', () => {
    const merged = mergeTransitions([{ event: 'fail', jobId: JOB, attempt: 1, at: 1, error: 'bad\u0000header' }]);
    expect(merged.rows[0]?.error).toBe('bad\ufffdheader');
    expect(merged.events[0]?.detail).toBe('bad\ufffdheader');
  });
});
