/**
 * Settles with `work`, or rejects with `message` once `ms` have passed: for calls to a
 * dependency that may never answer (a probe, a shutdown step, a check) and must not hang.
 * The timer is cleared either way, so it never holds the process open.
 */
export function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
