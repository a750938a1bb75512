import { RestartPolicy } from '../../services/local/restart-policy';

describe('RestartPolicy', () => {
  it('restarts with a doubling delay, then gives up at the fifth crash within the window', () => {
    const policy = new RestartPolicy({ initialDelayMs: 500, maxDelayMs: 15_000, maxCrashes: 5, windowMs: 60_000 });
    expect([0, 1_000, 2_000, 3_000].map((at) => policy.crashed(at))).toEqual([
      { action: 'restart', delayMs: 500, crashesInWindow: 1 },
      { action: 'restart', delayMs: 1_000, crashesInWindow: 2 },
      { action: 'restart', delayMs: 2_000, crashesInWindow: 3 },
      { action: 'restart', delayMs: 4_000, crashesInWindow: 4 },
    ]);
    expect(policy.crashed(4_000)).toEqual({ action: 'give-up', crashesInWindow: 5, windowMs: 60_000 });
  });

  it('forgets crashes older than the window, and caps the delay', () => {
    const policy = new RestartPolicy({ initialDelayMs: 10_000, maxDelayMs: 15_000, maxCrashes: 3, windowMs: 1_000 });
    expect(policy.crashed(0)).toMatchObject({ action: 'restart', delayMs: 10_000 });
    expect(policy.crashed(500)).toMatchObject({ action: 'restart', delayMs: 15_000, crashesInWindow: 2 });
    expect(policy.crashed(5_000)).toMatchObject({ action: 'restart', delayMs: 10_000, crashesInWindow: 1 });
  });

  it('checks its options', () => {
    expect(() => new RestartPolicy({ maxCrashes: 0 })).toThrow(/maxCrashes/);
  });
});
