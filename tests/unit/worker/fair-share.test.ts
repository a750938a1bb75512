import { createLogger } from '../../../services/core/logger';
import { FairShare } from '../../../services/worker/fair-share';

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
    const share = await fairShare.take('owner', 'job', 'sleep');
    expect(share).toBeDefined();
    share?.release();
    expect(promote).not.toHaveBeenCalled();
    fairShare.close();
  });

  it('refuses a share count that is not a positive whole number', () => {
    const options = { connection: () => { throw new Error('unused'); }, prefix: '{pk}', relay: { promote: async () => false }, log };
    expect(() => new FairShare({ ...options, perUser: 0 })).toThrow('perUser must be a positive integer');
    expect(() => new FairShare({ ...options, perUser: 1.5 })).toThrow('perUser must be a positive integer');
  });
});
