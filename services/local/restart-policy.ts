export interface RestartPolicyOptions {
  /** Wait before the first restart; doubles with each crash in the window. Default 500 ms. */
  initialDelayMs?: number;
  /** Longest wait between restarts. Default 15 s. */
  maxDelayMs?: number;
  /** This many crashes within `windowMs` end the run. Default 5. */
  maxCrashes?: number;
  /** Default 60 s. */
  windowMs?: number;
}

export type RestartDecision =
  | { action: 'restart'; delayMs: number; crashesInWindow: number }
  | { action: 'give-up'; crashesInWindow: number; windowMs: number };

/**
 * When to restart a crashed process, as an orchestrator would: at once-ish the first time,
 * then with a delay that doubles while crashes keep coming, and never again once it
 * crashed `maxCrashes` times within `windowMs` (a crash loop that restarting will not fix).
 * Crashes older than the window are forgotten, so a process that ran fine for a while
 * starts over with the short delay.
 */
export class RestartPolicy {
  private readonly options: Required<RestartPolicyOptions>;
  private crashes: number[] = [];

  constructor(options: RestartPolicyOptions = {}) {
    this.options = { initialDelayMs: 500, maxDelayMs: 15_000, maxCrashes: 5, windowMs: 60_000, ...options };
    for (const [name, value] of Object.entries(this.options)) {
      if (!Number.isFinite(value) || value <= 0) throw new RangeError(`restart policy: ${name} must be positive`);
    }
  }

  crashed(now: number): RestartDecision {
    this.crashes = [...this.crashes.filter((at) => now - at < this.options.windowMs), now];
    const crashesInWindow = this.crashes.length;
    if (crashesInWindow >= this.options.maxCrashes) return { action: 'give-up', crashesInWindow, windowMs: this.options.windowMs };
    const delayMs = Math.min(this.options.maxDelayMs, this.options.initialDelayMs * 2 ** (crashesInWindow - 1));
    return { action: 'restart', delayMs, crashesInWindow };
  }
}
