import type { IncomingMessage, ServerResponse } from 'node:http';
import { dropArrivingBody } from './drop-arriving-body';
import { lingerBeforeClosing } from './lingering-close';

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
 * - a body not read at all is read and dropped after the answer as boundUnreadBody says,
 *   keeping the connection. One whose client waits for `100 Continue` before sending it (it
 *   was refused without one, so it is not coming) gets `Connection: close` at once, and so
 *   does one declared longer than REFUSED_BODY_DRAIN_BYTES;
 * - a body read part way (refused as it arrived) leaves the connection unfit for another
 *   request: `Connection: close`, closed after a lingering read (lingerBeforeClosing) so that
 *   a client still sending sees the answer before the reset; so is one declared past the drain.
 */
export function settleUnreadBody(req: IncomingMessage, res: ServerResponse): void {
  if (req.complete) return;
  if (waitsForContinue(req) && !req.readableDidRead) {
    res.setHeader('Connection', 'close');
    return;
  }
  if (req.readableDidRead || declaredBeyondDrain(req)) {
    res.setHeader('Connection', 'close');
    lingerBeforeClosing(req);
    return;
  }
  boundUnreadBody(req, res);
}

/**
 * Bounds what is read of a request's body that nothing read by the time its answer is out,
 * whatever the answer: a GET, a 404 or a 2xx sent with a body would otherwise have Node read
 * the whole of it to drop it, however long. Called for every request before its route runs.
 * After the answer, such a body is read and dropped up to REFUSED_BODY_DRAIN_BYTES and for
 * REFUSED_BODY_DRAIN_MS, keeping the connection; past either the connection is closed. One
 * declared longer than that gets `Connection: close` now: a route that reads it whole (an
 * upload under a limit set above the bound) still does, and the connection then ends with it.
 */
export function boundUnreadBody(req: IncomingMessage, res: ServerResponse): void {
  if (!carriesBody(req)) return;
  if (declaredBeyondDrain(req)) res.setHeader('Connection', 'close');
  // On 'prefinish' (the answer handed to the socket), not 'finish': at 'finish' Node has already
  // begun to drop the body itself, and the bytes it drops never reach a 'data' listener to count.
  res.once('prefinish', () => drainBounded(req));
}

function carriesBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function declaredBeyondDrain(req: IncomingMessage): boolean {
  return Number(req.headers['content-length']) > REFUSED_BODY_DRAIN_BYTES;
}

function waitsForContinue(req: IncomingMessage): boolean {
  return /^\s*100-continue\s*$/i.test(req.headers.expect ?? '');
}

/** Requests whose body is being drained: boundUnreadBody and settleUnreadBody may both ask for it. */
const draining = new WeakSet<IncomingMessage>();

function drainBounded(req: IncomingMessage): void {
  if (req.complete || req.socket.destroyed || draining.has(req)) return;
  draining.add(req);
  dropArrivingBody(req, { bytes: REFUSED_BODY_DRAIN_BYTES, ms: REFUSED_BODY_DRAIN_MS }, () => req.socket.destroy());
}
