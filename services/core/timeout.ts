/**
 * Settles with `work`, or rejects once `ms` have passed: for calls to a dependency that may
 * never answer (a probe, a shutdown step, a check) and must not hang. The rejection is an
 * Error with `message`, or what `message` makes when the caller needs its own error type.
 * The timer is cleared either way, so it never holds the process open.
 *
 * When the time is up, an answer already waiting in a socket still wins: the rejection
 * waits for the event loop's next look at its sockets (setImmediate runs after it). A timer
 * is run before the sockets are read, so a process whose loop was busy past the deadline
 * (one request's large body) would otherwise take a dependency that answered in time for
 * one that is away.
 */
export function withTimeout<T>(work: Promise<T>, ms: number, message: string | (() => Error)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let lastLook: NodeJS.Immediate | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      lastLook = setImmediate(() => reject(typeof message === 'string' ? new Error(message) : message()));
    }, ms);
  });
  return Promise.race([work, timeout]).finally(() => {
    clearTimeout(timer);
    clearImmediate(lastLook);
  });
}
