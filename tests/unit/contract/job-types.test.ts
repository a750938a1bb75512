import { z } from 'zod';
import { defineJobType, echo, JOB_TYPES, MAX_JOBS_PER_QUEUE_ENTRY } from '../../../services/contract';

const base = { type: 'demo.quick', description: 'a test type', input: z.object({}), output: z.object({}) };

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
