import os from 'node:os';
import { DEFAULT_WORKER_FILE_MEMORY_BUDGET_BYTES, DEFAULT_WORKER_INPUT_BUDGET_BYTES, WORKER_BUDGETS_SIZED_FOR_BYTES } from '../contract';

export interface MemoryBudgets {
  inputBudgetBytes: number;
  fileMemoryBudgetBytes: number;
}

/** How a worker's budgets were chosen, for the line it logs at start. */
export type MemoryBudgetsSource = 'set' | 'sized from the memory limit' | 'defaults: no memory limit';

/**
 * The memory this process may use: its container's limit (cgroup `memory.max`, which
 * libuv reads), or undefined when there is none below the machine's own memory (a laptop,
 * `npm start`, a pod without a limit).
 */
export function memoryLimitBytes(constrained: number | undefined = process.constrainedMemory?.(), machine: number = os.totalmem()): number | undefined {
  if (constrained === undefined || !Number.isFinite(constrained) || constrained <= 0 || constrained >= machine) return undefined;
  return constrained;
}

/**
 * The budgets for a worker that may use `limitBytes`: the defaults were sized and measured
 * in a 512 MiB pod, and a pod of another size gets the same shares of its memory (an eighth
 * for file jobs, a thirty-second for large inputs), so a small pod is not run out of memory
 * by budgets meant for a larger one and a large one is not held to a small one's. A budget
 * set in the environment is kept as it is.
 */
export function memoryBudgets(limitBytes: number | undefined, set: Partial<MemoryBudgets> = {}): { budgets: MemoryBudgets; source: MemoryBudgetsSource } {
  const share = (sizedFor512MiB: number) => (limitBytes === undefined ? sizedFor512MiB : Math.floor((sizedFor512MiB * limitBytes) / WORKER_BUDGETS_SIZED_FOR_BYTES));
  const budgets = {
    inputBudgetBytes: set.inputBudgetBytes ?? share(DEFAULT_WORKER_INPUT_BUDGET_BYTES),
    fileMemoryBudgetBytes: set.fileMemoryBudgetBytes ?? share(DEFAULT_WORKER_FILE_MEMORY_BUDGET_BYTES),
  };
  const source: MemoryBudgetsSource =
    set.inputBudgetBytes !== undefined && set.fileMemoryBudgetBytes !== undefined ? 'set' : limitBytes === undefined ? 'defaults: no memory limit' : 'sized from the memory limit';
  return { budgets, source };
}
