import { randomUUID } from 'node:crypto';
import { MAX_JOBS_PER_QUEUE_ENTRY } from '../../../services/contract';
import { ownJobId, sharedJobIds } from '../../../services/worker/queue-entry';

describe('queue entry data', () => {
  it('reads the job ids of a shared entry', () => {
    const ids = [randomUUID(), randomUUID()];
    expect(sharedJobIds({ jobIds: ids })).toEqual(ids);
    const full = Array.from({ length: MAX_JOBS_PER_QUEUE_ENTRY }, () => randomUUID());
    expect(sharedJobIds({ jobIds: full })).toEqual(full);
  });

  it('reads no shared entry from data that is not one: empty, too many, or any id not a UUID', () => {
    expect(sharedJobIds({ jobIds: [] })).toBeUndefined();
    expect(sharedJobIds({ jobIds: Array.from({ length: MAX_JOBS_PER_QUEUE_ENTRY + 1 }, () => randomUUID()) })).toBeUndefined();
    expect(sharedJobIds({ jobIds: [randomUUID(), 'not-a-uuid'] })).toBeUndefined();
    expect(sharedJobIds({ jobIds: [randomUUID(), 7] })).toBeUndefined();
    expect(sharedJobIds({ jobIds: 'x' })).toBeUndefined();
    expect(sharedJobIds({ jobId: randomUUID() })).toBeUndefined();
    expect(sharedJobIds(null)).toBeUndefined();
  });

  it('reads the job id of an own entry, and none from data without a UUID', () => {
    const id = randomUUID();
    expect(ownJobId({ jobId: id, crashes: 1 })).toBe(id);
    expect(ownJobId({ jobId: 'nope' })).toBeUndefined();
    expect(ownJobId({ jobId: 42 })).toBeUndefined();
    expect(ownJobId({ jobIds: [id] })).toBeUndefined();
    expect(ownJobId(null)).toBeUndefined();
    expect(ownJobId(undefined)).toBeUndefined();
  });
});
