import { MAX_BACKOFF_MS, retryDelayMs } from '../../../services/worker/backoff';

describe('retryDelayMs', () => {
  it('doubles per attempt, with equal jitter in the upper half of the step', () => {
    expect(retryDelayMs(1_000, 1, () => 0)).toBe(500);
    expect(retryDelayMs(1_000, 1, () => 1)).toBe(1_000);
    expect(retryDelayMs(1_000, 3, () => 0)).toBe(2_000);
    expect(retryDelayMs(1_000, 3, () => 1)).toBe(4_000);
  });

  it('is capped, whatever the attempt', () => {
    expect(retryDelayMs(1_000, 40, () => 1)).toBe(MAX_BACKOFF_MS);
    expect(retryDelayMs(1_000, 40, () => 0)).toBe(MAX_BACKOFF_MS / 2);
  });

  it('treats attempt 0 like the first and a zero base as no wait', () => {
    expect(retryDelayMs(1_000, 0, () => 1)).toBe(1_000);
    expect(retryDelayMs(0, 5, () => 0.5)).toBe(0);
  });
});
