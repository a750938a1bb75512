import type { Metrics } from '../../metrics';

/**
 * Redis could not say which of the sweep's rows it holds. None of them can be shown handed
 * over, so the lag is the age of the oldest of them (`oldestUnconfirmedUs`, µs since epoch).
 */
export class RedisStatesUnavailableError extends Error {
  constructor(
    readonly oldestUnconfirmedUs: number,
    options: { cause: unknown },
  ) {
    super(`Redis could not be asked which queued jobs it holds: ${options.cause instanceof Error ? options.cause.message : String(options.cause)}`, options);
    this.name = this.constructor.name;
  }
}

/**
 * Runs a look at the queued rows and exports the lag it measured (platform_relay_lag_seconds),
 * kept for `freshForMs`. Only a look that ran measures: a process that lost the sweep lock,
 * or whose PostgreSQL query failed, says nothing and its series lapses. When Redis cannot be
 * asked, the rows already read are unconfirmed, and their age is exported as the lag (jobs
 * are not reaching the queue).
 */
export async function measuringLag<T extends { lagSeconds: number }>(metrics: Metrics | undefined, freshForMs: number, look: () => Promise<T>): Promise<T> {
  try {
    const result = await look();
    metrics?.relayLag.record(result.lagSeconds, freshForMs);
    return result;
  } catch (error) {
    if (error instanceof RedisStatesUnavailableError) metrics?.relayLag.record(ageSeconds(error.oldestUnconfirmedUs), freshForMs);
    throw error;
  }
}

/** Seconds since a time in µs since the epoch (a row's updated_us). */
export function ageSeconds(us: number): number {
  return Math.max(0, Date.now() / 1_000 - us / 1_000_000);
}
