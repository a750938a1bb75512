import type { IncomingMessage } from 'node:http';

/** Which bound a body still arriving went past: its bytes or its time. */
export type DropBound = 'bytes' | 'ms';

/**
 * Reads and drops what arrives of a request's body that nothing wants, for at most `bytes`
 * and `ms`: past either, `past` is called with the bound it went past (to close the
 * connection under the rest, or to go on under other bounds); at the body's end, `ended`.
 * What a refused body's drain and a lingering close both do.
 */
export function dropArrivingBody(
  req: IncomingMessage,
  bound: { bytes: number; ms: number },
  past: (bound: DropBound) => void,
  ended: () => void = () => undefined,
): void {
  let arrived = 0;
  const stop = () => {
    clearTimeout(deadline);
    req.off('data', count).off('end', onEnd).off('close', stop);
  };
  const pastBound = (which: DropBound) => {
    stop();
    past(which);
  };
  const deadline = setTimeout(() => pastBound('ms'), bound.ms);
  deadline.unref();
  const count = (chunk: Buffer) => {
    arrived += chunk.length;
    if (arrived > bound.bytes) pastBound('bytes');
  };
  const onEnd = () => {
    stop();
    ended();
  };
  req.on('data', count);
  req.once('end', onEnd);
  req.once('close', stop);
  req.resume();
}
