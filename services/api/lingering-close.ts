import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { dropArrivingBody, type DropBound } from './drop-arriving-body';

/**
 * How long after its answer a connection closing under a body still arriving reads on
 * whatever arrives (up to LINGER_GRACE_BYTES): what its client sent before it read the answer
 * is already in the sockets' buffers, megabytes on a fast link, and the server would read it
 * in a millisecond or two; a client busy sending, or one waiting for its turn on a loaded
 * machine, needs longer than that to read.
 */
export const LINGER_GRACE_MS = 500;
/** What is read within the grace at most: more than the sockets' buffers hold in flight. */
export const LINGER_GRACE_BYTES = 16 * 1024 * 1024;
/** What of a refused body is still read after the grace, at most, before the connection is closed under the rest. */
export const LINGER_BYTES = 1024 * 1024;
/** How long after its answer a connection closing under a body still arriving waits for its client, at most. */
export const LINGER_MS = 2_000;

/**
 * Closing a connection whose request body is still arriving makes the kernel answer the
 * unread bytes with a reset, and a client still sending (as one does while its body is
 * refused part way) then fails its next write and, Node's own client among them, drops the
 * connection without reading the answer that was already there: it reports ECONNRESET or
 * EPIPE instead of the 413. So, as web servers do (nginx's lingering close), such a
 * connection first ends its side once the answer is out and goes on reading and dropping
 * what arrives, until the client stops (its body ends, or it closes), for LINGER_GRACE_MS
 * (unless LINGER_GRACE_BYTES arrive sooner) and then for LINGER_BYTES more or until LINGER_MS
 * at most, and closes then: a client that reads while it sends sees the answer.
 *
 * The seam: Node closes a `Connection: close` response's socket with `socket.destroySoon()`
 * once the answer is written (node:_http_server); that one socket's `destroySoon` is replaced
 * by the lingering close. On a Node whose sockets have none, the connection closes as Node
 * closes it (the reset may come first again).
 */
export function lingerBeforeClosing(req: IncomingMessage): void {
  const socket: Socket & { destroySoon?: () => void } = req.socket;
  if (typeof socket.destroySoon !== 'function' || req.complete || socket.destroyed) return;
  socket.destroySoon = () => {
    socket.end();
    const close = () => socket.destroy();
    socket.once('end', close);
    const afterGrace = (bound: DropBound) => {
      if (bound === 'bytes') close();
      else dropArrivingBody(req, { bytes: LINGER_BYTES, ms: LINGER_MS - LINGER_GRACE_MS }, close, close);
    };
    dropArrivingBody(req, { bytes: LINGER_GRACE_BYTES, ms: LINGER_GRACE_MS }, afterGrace, close);
  };
}
