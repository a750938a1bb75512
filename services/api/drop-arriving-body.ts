import type { IncomingMessage } from 'node:http';

/**
 * Reads and drops what arrives of a request's body that nothing wants, for at most `bytes`
 * and `ms`: past either, `past` is called (to close the connection under the rest); at the
 * body's end, `ended`. What a refused body's drain and a lingering close both do.
 */
export function dropArrivingBody(req: IncomingMessage, bound: { bytes: number; ms: number }, past: () => void, ended: () => void = () => undefined): void {
  let arrived = 0;
  const stop = () => {
    clearTimeout(deadline);
    req.off('data', count);
  };
  const pastBound = () => {
    stop();
    past();
  };
  const deadline = setTimeout(pastBound, bound.ms);
  deadline.unref();
  const count = (chunk: Buffer) => {
    arrived += chunk.length;
    if (arrived > bound.bytes) pastBound();
  };
  req.on('data', count);
  req.once('end', () => {
    stop();
    ended();
  });
  req.once('close', stop);
  req.resume();
}
