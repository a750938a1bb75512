import type { IncomingMessage, ServerResponse } from 'node:http';

/** A refused body no longer than this is read and dropped after the answer, so its client gets the answer. */
export const REFUSED_BODY_DRAIN_BYTES = 64 * 1024 * 1024;
/** How long after the answer a refused body may take to arrive before the connection is closed under it. */
export const REFUSED_BODY_DRAIN_MS = 30_000;

/**
 * How the connection of a request answered with an error goes on while its body is unread.
 *
 * Node either reads such a body whole to drop it, whatever its size, or, told `Connection:
 * close`, closes the socket as soon as the answer is out; a client still sending then meets a
 * reset, and Node's fetch, and most clients that write the whole body before reading, report
 * EPIPE or ECONNRESET instead of the 413 or 429 that was sent. So:
 * - a body not read at all is read and dropped after the answer, up to
 *   REFUSED_BODY_DRAIN_BYTES and for REFUSED_BODY_DRAIN_MS; past either the connection is
 *   closed. One declared longer than that bound, or whose client waits for `100 Continue`
 *   before sending it (it was refused without one, so it is not coming), gets `Connection:
 *   close` at once;
 * - a body read part way (refused as it arrived) leaves the connection unfit for another
 *   request: `Connection: close`.
 */
export function settleUnreadBody(req: IncomingMessage, res: ServerResponse): void {
  if (req.complete) return;
  if (req.readableDidRead || waitsForContinue(req) || Number(req.headers['content-length']) > REFUSED_BODY_DRAIN_BYTES) {
    res.setHeader('Connection', 'close');
    return;
  }
  res.once('finish', () => drainBounded(req));
}

function waitsForContinue(req: IncomingMessage): boolean {
  return /^\s*100-continue\s*$/i.test(req.headers.expect ?? '');
}

function drainBounded(req: IncomingMessage): void {
  if (req.complete || req.socket.destroyed) return;
  let bytes = 0;
  const closeUnderIt = () => req.socket.destroy();
  const deadline = setTimeout(closeUnderIt, REFUSED_BODY_DRAIN_MS);
  deadline.unref();
  const count = (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > REFUSED_BODY_DRAIN_BYTES) closeUnderIt();
  };
  const done = () => {
    clearTimeout(deadline);
    req.off('data', count);
  };
  req.on('data', count);
  req.once('end', done);
  req.once('close', done);
  req.resume();
}
