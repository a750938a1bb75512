import type { MemoryBudgetName } from '../contract';
import { MemoryBudget, type MemoryBudgetObserver } from '../core/memory-budget';
import type { Metrics } from '../core/metrics';

/** A budget whose capacity, held bytes and waiting jobs the worker's metrics export under `budget`. */
export function observedMemoryBudget(budget: MemoryBudgetName, capacityBytes: number, metrics: Metrics | undefined): MemoryBudget {
  metrics?.workerMemoryBudget.set({ budget }, capacityBytes);
  const observe: MemoryBudgetObserver = ({ held, waiting }) => {
    metrics?.workerMemoryHeld.set({ budget }, held);
    metrics?.workerMemoryWaiting.set({ budget }, waiting);
  };
  observe({ held: 0, waiting: 0 });
  return new MemoryBudget(capacityBytes, observe);
}
