/** Short lock and stall windows so crash recovery takes seconds, not the production 30 s. */
export const FAST_STALL = { lockDurationMs: 2_000, stalledIntervalMs: 1_000, maxStalledCount: 2 } as const;
