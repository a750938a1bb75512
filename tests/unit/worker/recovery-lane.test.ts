import { RecoveryLane } from '../../../services/worker/recovery-lane';

/** A relay whose promote answers, per entry, whether the entry was still parked in delayed. */
function fakeRelay(stillParked: (entryId: string) => boolean) {
  const promoted: string[] = [];
  return {
    promoted,
    relay: {
      promote: async (entryId: string) => {
        promoted.push(entryId);
        return stillParked(entryId);
      },
    },
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('RecoveryLane', () => {
  it('lets one suspect in at a time', () => {
    const lane = new RecoveryLane(fakeRelay(() => true));
    expect(lane.enter('a')).toBe(true);
    expect(lane.enter('b')).toBe(false);
    lane.leave();
    expect(lane.enter('b')).toBe(true);
  });

  it('calls the first entry parked back when it frees, and only that one', async () => {
    const { relay, promoted } = fakeRelay(() => true);
    const lane = new RecoveryLane({ relay });
    lane.enter('a');
    lane.park('b');
    lane.park('c');
    lane.leave();
    await settle();
    expect(promoted).toEqual(['b']);
  });

  it('goes on to the next parked entry when one is no longer parked (taken elsewhere, or its delay ended)', async () => {
    const { relay, promoted } = fakeRelay((entryId) => entryId === 'c');
    const lane = new RecoveryLane({ relay });
    lane.enter('a');
    lane.park('b');
    lane.park('c');
    lane.park('d');
    lane.leave();
    await settle();
    expect(promoted).toEqual(['b', 'c']);
  });

  it('forgets a parked entry that came back and took the lane on its own', async () => {
    const { relay, promoted } = fakeRelay(() => true);
    const lane = new RecoveryLane({ relay });
    lane.enter('a');
    lane.park('b');
    lane.park('c');
    lane.leave();
    // c's delay ended before the lane called it: it reaches this worker and takes the lane.
    expect(lane.enter('c')).toBe(true);
    lane.leave();
    await settle();
    expect(promoted).toEqual(['b']);
  });

  it('stops calling parked entries back once the lane is taken again', async () => {
    const { relay, promoted } = fakeRelay(() => false);
    const lane = new RecoveryLane({ relay });
    lane.enter('a');
    lane.park('b');
    lane.park('c');
    lane.leave();
    // While b's promote is under way, another suspect takes the lane.
    expect(lane.enter('x')).toBe(true);
    await settle();
    expect(promoted).toEqual(['b']);
    lane.leave();
    await settle();
    expect(promoted).toEqual(['b', 'c']);
  });

  it('ignores entries without an id', async () => {
    const { relay, promoted } = fakeRelay(() => true);
    const lane = new RecoveryLane({ relay });
    expect(lane.enter(undefined)).toBe(true);
    lane.park(undefined);
    lane.leave();
    await settle();
    expect(promoted).toEqual([]);
  });
});
