import { createLogger } from '../../../services/core/logger';
import { FairShare, HELD_ENTRY_DELAY_MS, HELD_ENTRY_MAX_DELAY_MS, heldEntryDelayMs } from '../../../services/worker/fair-share';

const log = createLogger({ service: 'fair-share-test', level: 'silent' });

describe('FairShare', () => {
  it('runs the job when Redis cannot count: a moment without the cap, never a job left waiting', async () => {
    const promote = jest.fn(async () => true);
    const fairShare = new FairShare({
      connection: () => {
        throw new Error('Redis is away');
      },
      prefix: '{pk}',
      perUser: 1,
      relay: { promote },
      log,
    });
    const taken = await fairShare.take('owner', 'job', 'sleep');
    if (!('share' in taken)) throw new Error('the job was held');
    taken.share.release();
    expect(promote).not.toHaveBeenCalled();
    fairShare.close();
  });

  it('lets a long line come back on its own at a bounded rate: ten entries a second, each at least every 10 s and at most every hour', () => {
    expect(heldEntryDelayMs(1)).toBe(HELD_ENTRY_DELAY_MS);
    expect(heldEntryDelayMs(100)).toBe(HELD_ENTRY_DELAY_MS);
    expect(heldEntryDelayMs(1_000)).toBe(100_000);
    expect(heldEntryDelayMs(1_000_000)).toBe(HELD_ENTRY_MAX_DELAY_MS);
  });

  it('refuses a share count that is not a positive whole number', () => {
    const options = { connection: () => { throw new Error('unused'); }, prefix: '{pk}', relay: { promote: async () => false }, log };
    expect(() => new FairShare({ ...options, perUser: 0 })).toThrow('perUser must be a positive integer');
    expect(() => new FairShare({ ...options, perUser: 1.5 })).toThrow('perUser must be a positive integer');
  });
});
