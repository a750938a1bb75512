import { createLogger } from '../../../services/core/logger';
import type { SlotClaim, SlotHolder, WorkerSlots } from '../../../services/core/queue/worker-slots';
import { SlotHolding } from '../../../services/worker/slot-holding';

const log = createLogger({ service: 'slot-holding-test', level: 'silent' });
const me: SlotHolder = { workerId: 'me', lockOwner: 'bullmq-me', claimedAt: 1 };
const other: SlotHolder = { workerId: 'other', lockOwner: 'bullmq-other', claimedAt: 2 };

/** One slot in memory, with the claim outcome a test picks. */
function fakeSlots(outcome: Partial<SlotClaim>) {
  let recorded: SlotHolder | undefined;
  const left: SlotHolder[] = [];
  const slots = {
    claim: async (_slot: string, holder: SlotHolder): Promise<SlotClaim> => {
      const claim = { taken: true, unreadablePredecessor: false, released: 0, ...outcome };
      if (claim.taken && recorded === undefined) recorded = holder;
      return claim;
    },
    holder: async () => recorded,
    recorded: async () => recorded !== undefined,
    leave: async (_slot: string, holder: SlotHolder) => {
      left.push(holder);
      recorded = undefined;
    },
  };
  return { slots: slots as unknown as WorkerSlots, left, lose: () => (recorded = undefined), takeOver: () => (recorded = other) };
}

describe('SlotHolding', () => {
  it('without a claim holds nothing, restores nothing and leaves nothing', async () => {
    const holding = new SlotHolding(log);
    await expect(holding.holds()).resolves.toBeUndefined();
    await expect(holding.restore()).resolves.toBe(false);
    await expect(holding.leave()).resolves.toBeUndefined();
  });

  it('holds the slot it claimed, and notices another process claiming it since', async () => {
    const fake = fakeSlots({});
    const holding = new SlotHolding(log);
    await holding.claim(fake.slots, 'pod-1', me);
    await expect(holding.holds()).resolves.toEqual({ held: true, holder: me });
    fake.takeOver();
    await expect(holding.holds()).resolves.toEqual({ held: false, holder: other });
  });

  it('writes its record again only when Redis lost it', async () => {
    const fake = fakeSlots({});
    const holding = new SlotHolding(log);
    await holding.claim(fake.slots, 'pod-1', me);
    await expect(holding.restore()).resolves.toBe(false);
    fake.lose();
    await expect(holding.restore()).resolves.toBe(true);
    await expect(holding.holds()).resolves.toEqual({ held: true, holder: me });
  });

  it('runs without a slot when a live process holds it: nothing to look at, restore or leave', async () => {
    const fake = fakeSlots({ taken: false, predecessor: other });
    const holding = new SlotHolding(log);
    await holding.claim(fake.slots, 'pod-1', me);
    await expect(holding.holds()).resolves.toBeUndefined();
    await expect(holding.restore()).resolves.toBe(false);
    await holding.leave();
    expect(fake.left).toEqual([]);
  });

  it('leaves the slot it claimed', async () => {
    const fake = fakeSlots({});
    const holding = new SlotHolding(log);
    await holding.claim(fake.slots, 'pod-1', me);
    await holding.leave();
    expect(fake.left).toEqual([me]);
  });
});
