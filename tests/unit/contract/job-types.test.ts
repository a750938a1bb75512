import { z } from 'zod';
import { defineJobType, echo, JOB_TYPES, MAX_JOB_TIMEOUT_MS, MAX_JOBS_PER_QUEUE_ENTRY } from '../../../services/contract';

const untimed = { type: 'demo.quick', description: 'a test type', input: z.object({}), output: z.object({}) };
const base = { ...untimed, timeoutMs: 30_000 };

describe('job type definitions: time limit per attempt', () => {
  it('has no default: a type that declares none does not compile, and is refused when loaded anyway', () => {
    // @ts-expect-error timeoutMs is required: a forgotten limit must not become a generic one.
    expect(() => defineJobType(untimed)).toThrow(`job type demo.quick: timeoutMs must be declared, an integer from 1000 to ${MAX_JOB_TIMEOUT_MS}`);
  });

  it('keeps the limit declared', () => {
    expect(defineJobType(base).timeoutMs).toBe(30_000);
  });

  it.each([999, 1_500.5, MAX_JOB_TIMEOUT_MS + 1, Number.NaN])('refuses %p, naming the setting', (timeoutMs) => {
    expect(() => defineJobType({ ...base, timeoutMs })).toThrow(`job type demo.quick: timeoutMs must be declared, an integer from 1000 to ${MAX_JOB_TIMEOUT_MS}`);
  });
});

describe('job type definitions: jobs per queue entry', () => {
  it('gives each job an entry of its own unless the type says otherwise', () => {
    expect(defineJobType(base).jobsPerQueueEntry).toBe(1);
    expect(defineJobType({ ...base, jobsPerQueueEntry: MAX_JOBS_PER_QUEUE_ENTRY }).jobsPerQueueEntry).toBe(MAX_JOBS_PER_QUEUE_ENTRY);
  });

  it('shares entries only for the type that runs in microseconds', () => {
    expect(echo.jobsPerQueueEntry).toBe(10);
    const sharing = Object.values(JOB_TYPES).filter((definition) => definition.jobsPerQueueEntry > 1).map((definition) => definition.type);
    expect(sharing).toEqual(['echo']);
  });

  it.each([0, -1, 1.5, MAX_JOBS_PER_QUEUE_ENTRY + 1, Number.NaN])('refuses %p, naming the setting', (jobsPerQueueEntry) => {
    expect(() => defineJobType({ ...base, jobsPerQueueEntry })).toThrow(`job type demo.quick: jobsPerQueueEntry must be an integer from 1 to ${MAX_JOBS_PER_QUEUE_ENTRY}`);
  });
});
