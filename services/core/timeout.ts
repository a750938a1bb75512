/**
 * Settles with `work`, or rejects once `ms` have passed: for calls to a dependency that may
 * never answer (a probe, a shutdown step, a check) and must not hang. The rejection is an
 * Error with `message`, or what `message` makes when the caller needs its own error type.
 * The timer is cleared either way, so it never holds the process open.
 */
export function withTimeout<T>(work: Promise<T>, ms: number, message: string | (() => Error)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(typeof message === 'string' ? new Error(message) : message()), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
