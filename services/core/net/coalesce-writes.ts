import type { Duplex } from 'node:stream';

const coalesced = new WeakSet<Duplex>();

/**
 * Makes every write a socket receives within one tick leave as a single syscall.
 *
 * ioredis writes each command with its own `write`, and each is a syscall: a worker
 * finishing 200 jobs in one tick made 200 of them. Corking on the first write of a tick and
 * uncorking when the tick's callbacks are done sends the same bytes in the same order in
 * one writev. Nothing about the commands changes (unlike ioredis auto-pipelining, which
 * BullMQ does not support). node-postgres already corks each query's messages itself.
 */
export function coalesceWrites(socket: Duplex): void {
  if (coalesced.has(socket)) return;
  coalesced.add(socket);
  const write = socket.write;
  let corked = false;
  const flush = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = function writeCoalesced(this: Duplex, ...args: Parameters<Duplex['write']>): boolean {
    if (!corked) {
      corked = true;
      socket.cork();
      // nextTick runs after the promise callbacks queued so far: one flush per burst of replies.
      process.nextTick(flush);
    }
    return write.apply(this, args);
  } as Duplex['write'];
}
