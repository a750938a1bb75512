import { MemoryBudget } from '../../../services/core/memory-budget';

/** Whether the promise has settled after the microtasks queued so far have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('MemoryBudget', () => {
  it('lets jobs in while their bytes fit, and the next one as soon as bytes come back', async () => {
    const budget = new MemoryBudget(100);
    const first = await budget.acquire(60, 'alice');
    const second = budget.acquire(50, 'alice');
    expect(await settled(second)).toBe(false);
    expect(budget.held).toBe(60);
    first();
    expect(await settled(second)).toBe(true);
    expect(budget.held).toBe(50);
  });

  it('serves in order: a small job does not overtake a large one waiting for room', async () => {
    const budget = new MemoryBudget(100);
    const holder = await budget.acquire(60, 'alice');
    const large = budget.acquire(80, 'alice');
    const small = budget.acquire(10, 'alice');
    expect([await settled(large), await settled(small)]).toEqual([false, false]);
    holder();
    expect([await settled(large), await settled(small)]).toEqual([true, true]);
    expect(budget.held).toBe(90);
  });

  it('lets owners take turns: the next in line is the first waiting job of the owner let in longest ago', async () => {
    const budget = new MemoryBudget(100);
    const order: string[] = [];
    const take = (owner: string) => budget.acquire(60, owner).then((release) => (order.push(owner), release));
    const running = await take('alice');
    const waiting = [take('alice'), take('alice'), take('bob'), take('carol'), take('bob')];
    expect(budget.waiting).toBe(5);
    running();
    // Each is let in alone (60 of 100), so each must be released for the next to come in.
    for (const index of [2, 3, 0, 4, 1]) (await waiting[index]!)();
    expect(order).toEqual(['alice', 'bob', 'carol', 'alice', 'bob', 'alice']);
  });

  it('never lets an owner overtake the next in line, so a large job gets its room as others end', async () => {
    const budget = new MemoryBudget(100);
    const holder = await budget.acquire(60, 'alice');
    const large = budget.acquire(80, 'bob');
    const small = budget.acquire(10, 'carol');
    expect(budget.wouldWait(10, 'dave')).toBe(true);
    expect([await settled(large), await settled(small)]).toEqual([false, false]);
    holder();
    expect([await settled(large), await settled(small)]).toEqual([true, true]);
  });

  it('says a job waits when its owner\'s own jobs wait before it, and not when it is next and fits', async () => {
    const budget = new MemoryBudget(100);
    await budget.acquire(60, 'alice');
    void budget.acquire(60, 'alice');
    expect(budget.wouldWait(10, 'alice')).toBe(true);
    expect(budget.wouldWait(10, 'bob')).toBe(false);
    expect(budget.wouldWait(50, 'bob')).toBe(true);
  });

  it('runs an input larger than the whole budget alone, once the budget is empty', async () => {
    const budget = new MemoryBudget(100);
    const holder = await budget.acquire(10, 'alice');
    const huge = budget.acquire(500, 'alice');
    expect(await settled(huge)).toBe(false);
    holder();
    const release = await huge;
    expect(budget.held).toBe(500);
    const after = budget.acquire(1, 'alice');
    expect(await settled(after)).toBe(false);
    release();
    expect(await settled(after)).toBe(true);
  });

  it('counts a release once, however often it is called', async () => {
    const budget = new MemoryBudget(100);
    const release = await budget.acquire(40, 'alice');
    await budget.acquire(30, 'alice');
    release();
    release();
    expect(budget.held).toBe(30);
  });

  it('says whether a request would wait: when it does not fit beside what is held, or others wait before it', async () => {
    const budget = new MemoryBudget(100);
    expect(budget.wouldWait(500, 'alice')).toBe(false);
    const holder = await budget.acquire(60, 'alice');
    expect([budget.wouldWait(40, 'alice'), budget.wouldWait(41, 'alice')]).toEqual([false, true]);
    const large = budget.acquire(80, 'alice');
    expect(budget.waiting).toBe(1);
    expect(budget.wouldWait(10, 'alice')).toBe(true);
    holder();
    await large;
    expect(budget.waiting).toBe(0);
  });

  it('tells its observer what it holds and how many wait after every change', async () => {
    const states: { held: number; waiting: number }[] = [];
    const budget = new MemoryBudget(100, (state) => states.push(state));
    const first = await budget.acquire(70, 'alice');
    const second = budget.acquire(70, 'alice');
    first();
    (await second)();
    expect(states).toEqual([
      { held: 70, waiting: 0 },
      { held: 70, waiting: 1 },
      { held: 70, waiting: 0 },
      { held: 0, waiting: 0 },
    ]);
  });

  it('ends a wait when its signal aborts: the request leaves the line holding nothing, and those behind it may go in', async () => {
    const budget = new MemoryBudget(100);
    const holder = await budget.acquire(60, 'alice');
    const controller = new AbortController();
    const large = budget.acquire(80, 'bob', controller.signal);
    const small = budget.acquire(30, 'carol');
    expect(await settled(small)).toBe(false);
    const reason = new Error('cancelled');
    controller.abort(reason);
    await expect(large).rejects.toBe(reason);
    expect(await settled(small)).toBe(true);
    expect([budget.held, budget.waiting]).toEqual([90, 0]);
    holder();
    expect(budget.held).toBe(30);
  });

  it('refuses at once a request whose signal has already aborted, and ignores an abort after its bytes were granted', async () => {
    const budget = new MemoryBudget(100);
    const aborted = new AbortController();
    aborted.abort(new Error('shutdown'));
    await expect(budget.acquire(10, 'alice', aborted.signal)).rejects.toThrow('shutdown');
    expect([budget.held, budget.waiting]).toEqual([0, 0]);
    const later = new AbortController();
    const release = await budget.acquire(10, 'alice', later.signal);
    later.abort(new Error('too late'));
    expect(budget.held).toBe(10);
    release();
    expect(budget.held).toBe(0);
  });

  it('refuses a budget that is not a positive number of bytes', () => {
    expect(() => new MemoryBudget(0)).toThrow(RangeError);
    expect(() => new MemoryBudget(1.5)).toThrow(RangeError);
  });
});
