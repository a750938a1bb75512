/** Longest wait between two attempts, whatever the type's base and the attempt number. */
export const MAX_BACKOFF_MS = 10 * 60_000;

/**
 * Exponential backoff with "equal jitter": base × 2^(attempt-1), capped, then a random
 * point in its upper half. Retries of jobs that failed together (a dependency outage)
 * spread out instead of returning as one wave, yet never come back sooner than half the
 * exponential step.
 */
export function retryDelayMs(baseMs: number, failedAttempt: number, random: () => number = Math.random): number {
  const exponential = Math.min(MAX_BACKOFF_MS, baseMs * 2 ** Math.max(0, failedAttempt - 1));
  return Math.round(exponential / 2 + random() * (exponential / 2));
}
