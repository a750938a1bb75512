import { AsyncLocalStorage } from 'node:async_hooks';

/** Correlation ids that every log line emitted while handling a request or a job carries. */
export interface LogContext {
  requestId?: string;
  jobId?: string;
}

const storage = new AsyncLocalStorage<LogContext>();

export function runWithContext<T>(context: LogContext, fn: () => T): T {
  const outer = storage.getStore();
  // Object.assign rather than a spread: this runs for every request and every job (bench/FINDINGS.md: object spreads).
  return storage.run(Object.assign({}, outer, context), fn);
}

export function currentContext(): LogContext | undefined {
  return storage.getStore();
}
