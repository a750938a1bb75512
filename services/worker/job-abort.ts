/**
 * Why a running job's signal was aborted. `lock-lost`: Redis told the worker its lock on the
 * job's queue entry is gone (it lapsed while Redis was away past the lock duration, or
 * another process released it), so BullMQ hands the entry out again.
 */
export type AbortKind = 'cancelled' | 'not-runnable' | 'shutdown' | 'timeout' | 'lock-lost';

/** The reason a running job's abort signal carries: what stopped it decides what its run becomes. */
export class JobAbortedError extends Error {
  constructor(readonly kind: AbortKind) {
    super(`job aborted: ${kind}`);
    this.name = this.constructor.name;
  }
}

/** Settles with `work`, or rejects as soon as `signal` aborts: a processor that ignores its signal still gives its slot back. */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  // The processor may still settle later; nobody is listening by then.
  work.catch(() => undefined);
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error as Error);
      },
    );
  });
}
