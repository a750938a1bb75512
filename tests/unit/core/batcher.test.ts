import { MicroBatcher } from '../../../services/core/batcher';

function recorder(run?: (items: number[]) => Promise<PromiseSettledResult<number>[]>) {
  const batches: number[][] = [];
  const batcher = new MicroBatcher<number, number>({
    name: 'test batcher',
    windowMs: 0,
    maxBatch: 3,
    maxInFlight: 1,
    run:
      run ??
      (async (items) => {
        batches.push(items);
        return items.map((item) => ({ status: 'fulfilled', value: item * 10 }));
      }),
  });
  return { batcher, batches };
}

describe('MicroBatcher', () => {
  it('gathers the items of one turn into batches of at most maxBatch, and answers each caller', async () => {
    const { batcher, batches } = recorder();
    const results = await Promise.all([1, 2, 3, 4, 5].map((item) => batcher.add(item)));
    expect(results).toEqual([10, 20, 30, 40, 50]);
    expect(batches).toEqual([[1, 2, 3], [4, 5]]);
  });

  it('rejects only the item its batch rejected', async () => {
    const batcher = new MicroBatcher<number, number>({
      name: 'picky',
      windowMs: 0,
      maxBatch: 10,
      maxInFlight: 1,
      run: async (items) => items.map((item) => (item === 2 ? { status: 'rejected', reason: new Error('two') } : { status: 'fulfilled', value: item })),
    });
    const results = await Promise.allSettled([1, 2, 3].map((item) => batcher.add(item)));
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });

  it('rejects the whole batch when its run throws or answers the wrong number of results', async () => {
    const thrown = recorder(async () => {
      throw new Error('down');
    }).batcher;
    await expect(thrown.add(1)).rejects.toThrow('down');
    const short = recorder(async () => []).batcher;
    await expect(short.add(1)).rejects.toThrow('batch of 1 returned 0 results');
  });

  it('runs at most maxInFlight batches at once, in order', async () => {
    let running = 0;
    let most = 0;
    const order: number[] = [];
    const batcher = new MicroBatcher<number, number>({
      name: 'serial',
      windowMs: 0,
      maxBatch: 1,
      maxInFlight: 1,
      run: async (items) => {
        running += 1;
        most = Math.max(most, running);
        await new Promise((resolve) => setImmediate(resolve));
        order.push(...items);
        running -= 1;
        return items.map((item) => ({ status: 'fulfilled', value: item }));
      },
    });
    await Promise.all([1, 2, 3].map((item) => batcher.add(item)));
    expect(most).toBe(1);
    expect(order).toEqual([1, 2, 3]);
  });

  it('asks a window function each time a batch starts to gather: items within its wait go together, a 0 sends them with the turn', async () => {
    let wait = 30;
    const asked: number[] = [];
    const batches: number[][] = [];
    const batcher = new MicroBatcher<number, number>({
      name: 'load-dependent',
      windowMs: () => {
        asked.push(wait);
        return wait;
      },
      maxBatch: 10,
      maxInFlight: 1,
      run: async (items) => {
        batches.push(items);
        return items.map((item) => ({ status: 'fulfilled', value: item }));
      },
    });
    const first = batcher.add(1);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await Promise.all([first, batcher.add(2)]);
    expect(batches).toEqual([[1, 2]]);

    wait = 0;
    const next = batcher.add(3);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await Promise.all([next, batcher.add(4)]);
    expect(batches).toEqual([[1, 2], [3], [4]]);
    expect(asked).toEqual([30, 0, 0]);
  });

  it('flushes on close and refuses items after', async () => {
    const { batcher, batches } = recorder();
    const pending = batcher.add(7);
    await batcher.close();
    await expect(pending).resolves.toBe(70);
    expect(batches).toEqual([[7]]);
    await expect(batcher.add(8)).rejects.toThrow('closed');
  });

  it('checks its options', () => {
    const run = async () => [];
    expect(() => new MicroBatcher({ name: 'x', windowMs: 0, maxBatch: 0, maxInFlight: 1, run })).toThrow(/maxBatch/);
    expect(() => new MicroBatcher({ name: 'x', windowMs: 0, maxBatch: 1, maxInFlight: 0, run })).toThrow(/maxInFlight/);
    expect(() => new MicroBatcher({ name: 'x', windowMs: -1, maxBatch: 1, maxInFlight: 1, run })).toThrow(/windowMs/);
  });
});
