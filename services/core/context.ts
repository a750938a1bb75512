import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Correlation ids that every log line the API emits while handling a request carries. The
 * worker hands each job a child logger instead (JobRunner.jobLog): on Node 20 an
 * AsyncLocalStorage in use turns on promise hooks for the whole process.
 */
export interface LogContext {
  requestId?: string;
  jobId?: string;
}

const storage = new AsyncLocalStorage<LogContext>();

export function runWithContext<T>(context: LogContext, fn: () => T): T {
  const outer = storage.getStore();
  // Object.assign rather than a spread: this runs for every request (bench/FINDINGS.md: object spreads).
  return storage.run(Object.assign({}, outer, context), fn);
}

export function currentContext(): LogContext | undefined {
  return storage.getStore();
}
