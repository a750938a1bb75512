import { createMetrics } from '../../../services/core/metrics';
import { observedMemoryBudget } from '../../../services/worker/observed-memory-budget';

describe('observedMemoryBudget', () => {
  it('exports its capacity, what it holds and who waits under its name', async () => {
    const metrics = createMetrics('memory-budget-test');
    const budget = observedMemoryBudget('file', 100, metrics);
    const value = async (gauge: { get(): Promise<{ values: { value: number; labels: object }[] }> }) => (await gauge.get()).values.map(({ value, labels }) => ({ value, labels }));
    expect(await value(metrics.workerMemoryBudget)).toEqual([{ value: 100, labels: { budget: 'file' } }]);
    expect(await value(metrics.workerMemoryWaiting)).toEqual([{ value: 0, labels: { budget: 'file' } }]);
    await budget.acquire(80, 'alice');
    void budget.acquire(30, 'alice');
    expect(await value(metrics.workerMemoryHeld)).toEqual([{ value: 80, labels: { budget: 'file' } }]);
    expect(await value(metrics.workerMemoryWaiting)).toEqual([{ value: 1, labels: { budget: 'file' } }]);
  });
});
