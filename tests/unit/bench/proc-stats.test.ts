import { machineCpu, stolenShare } from '../../../bench/proc-stats';

describe('host steal accounting', () => {
  it('is the stolen share of the CPU time that passed between two readings', () => {
    expect(stolenShare({ total: 1_000, steal: 10 }, { total: 1_400, steal: 110 })).toBeCloseTo(0.25);
  });

  it('is zero when no time passed, rather than dividing by zero', () => {
    expect(stolenShare({ total: 500, steal: 5 }, { total: 500, steal: 5 })).toBe(0);
  });

  it('reads this machine’s counters as growing totals that include the stolen time', async () => {
    const first = machineCpu();
    const spinUntil = Date.now() + 50;
    while (Date.now() < spinUntil) {
      // burn CPU time so the counters move
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    const second = machineCpu();
    expect(first.steal).toBeGreaterThanOrEqual(0);
    expect(first.total).toBeGreaterThanOrEqual(first.steal);
    expect(second.total).toBeGreaterThan(first.total);
    const share = stolenShare(first, second);
    expect(share).toBeGreaterThanOrEqual(0);
    expect(share).toBeLessThanOrEqual(1);
  });
});
