/** One job's progress reports, of which at most one per interval is written. */
export interface ProgressThrottle {
  /** Takes a percentage, clamped to 0-100; a value that is not finite is ignored. */
  report(percent: number): void;
  /** Writes nothing more, not even a write already scheduled. */
  stop(): void;
}

/**
 * Throttles one job's progress to a write per `intervalMs`, always ending on the latest
 * value: the first report is written at once, the ones that follow within the interval
 * become one write of the last of them when the interval is over. A processor may report
 * on every chunk it reads; the job's row hears of it a couple of times a second.
 */
export function throttleProgress(write: (percent: number) => void, intervalMs: number): ProgressThrottle {
  let latest = 0;
  let lastWrite = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const writeLatest = () => {
    timer = undefined;
    if (stopped) return;
    lastWrite = Date.now();
    write(latest);
  };
  return {
    report: (percent) => {
      if (stopped || !Number.isFinite(percent)) return;
      latest = Math.min(100, Math.max(0, percent));
      if (timer) return;
      const wait = lastWrite + intervalMs - Date.now();
      if (wait <= 0) writeLatest();
      else {
        timer = setTimeout(writeLatest, wait);
        timer.unref();
      }
    },
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
