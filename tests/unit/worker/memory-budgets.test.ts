import { DEFAULT_WORKER_FILE_MEMORY_BUDGET_BYTES, DEFAULT_WORKER_INPUT_BUDGET_BYTES } from '../../../services/contract';
import { memoryBudgets, memoryLimitBytes } from '../../../services/worker/memory-budgets';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe('memoryLimitBytes', () => {
  it("is the container's limit when it is below the machine's memory", () => {
    expect(memoryLimitBytes(512 * MiB, 16 * GiB)).toBe(512 * MiB);
  });

  it('is none without a limit: libuv answers the largest number, 0 or nothing, or the machine itself', () => {
    for (const constrained of [2 ** 64, 0, undefined, Number.NaN, 16 * GiB]) expect(memoryLimitBytes(constrained, 16 * GiB)).toBeUndefined();
  });
});

describe('memoryBudgets', () => {
  it('gives a 512 MiB worker, and one without a limit, the budgets measured in 512 MiB', () => {
    const measured = { inputBudgetBytes: DEFAULT_WORKER_INPUT_BUDGET_BYTES, fileMemoryBudgetBytes: DEFAULT_WORKER_FILE_MEMORY_BUDGET_BYTES };
    expect(memoryBudgets(512 * MiB)).toEqual({ budgets: measured, source: 'sized from the memory limit' });
    expect(memoryBudgets(undefined)).toEqual({ budgets: measured, source: 'defaults: no memory limit' });
  });

  it('gives other limits the same shares: a small pod is not run out of memory, a large one is not held to a small one', () => {
    expect(memoryBudgets(256 * MiB).budgets).toEqual({ inputBudgetBytes: 8 * MiB, fileMemoryBudgetBytes: 32 * MiB });
    expect(memoryBudgets(2 * GiB).budgets).toEqual({ inputBudgetBytes: 64 * MiB, fileMemoryBudgetBytes: 256 * MiB });
    // A limit in no round figure still gives whole bytes.
    expect(Number.isInteger(memoryBudgets(700 * MiB + 3).budgets.fileMemoryBudgetBytes)).toBe(true);
  });

  it('keeps a budget set in the environment as it is, and sizes only the other', () => {
    expect(memoryBudgets(2 * GiB, { fileMemoryBudgetBytes: 10 * MiB })).toEqual({ budgets: { inputBudgetBytes: 64 * MiB, fileMemoryBudgetBytes: 10 * MiB }, source: 'sized from the memory limit' });
    expect(memoryBudgets(2 * GiB, { inputBudgetBytes: MiB, fileMemoryBudgetBytes: 2 * MiB })).toEqual({ budgets: { inputBudgetBytes: MiB, fileMemoryBudgetBytes: 2 * MiB }, source: 'set' });
  });
});
