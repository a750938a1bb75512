import { InputBudget } from '../../../services/worker/input-budget';

/** Whether the promise has settled after the microtasks queued so far have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('InputBudget', () => {
  it('lets jobs in while their bytes fit, and the next one as soon as bytes come back', async () => {
    const budget = new InputBudget(100);
    const first = await budget.acquire(60);
    const second = budget.acquire(50);
    expect(await settled(second)).toBe(false);
    expect(budget.held).toBe(60);
    first();
    expect(await settled(second)).toBe(true);
    expect(budget.held).toBe(50);
  });

  it('serves in order: a small job does not overtake a large one waiting for room', async () => {
    const budget = new InputBudget(100);
    const holder = await budget.acquire(60);
    const large = budget.acquire(80);
    const small = budget.acquire(10);
    expect([await settled(large), await settled(small)]).toEqual([false, false]);
    holder();
    expect([await settled(large), await settled(small)]).toEqual([true, true]);
    expect(budget.held).toBe(90);
  });

  it('runs an input larger than the whole budget alone, once the budget is empty', async () => {
    const budget = new InputBudget(100);
    const holder = await budget.acquire(10);
    const huge = budget.acquire(500);
    expect(await settled(huge)).toBe(false);
    holder();
    const release = await huge;
    expect(budget.held).toBe(500);
    const after = budget.acquire(1);
    expect(await settled(after)).toBe(false);
    release();
    expect(await settled(after)).toBe(true);
  });

  it('counts a release once, however often it is called', async () => {
    const budget = new InputBudget(100);
    const release = await budget.acquire(40);
    await budget.acquire(30);
    release();
    release();
    expect(budget.held).toBe(30);
  });

  it('refuses a budget that is not a positive number of bytes', () => {
    expect(() => new InputBudget(0)).toThrow(RangeError);
    expect(() => new InputBudget(1.5)).toThrow(RangeError);
  });
});
