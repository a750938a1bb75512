import { connect, type Socket } from 'node:net';

/**
 * A raw HTTP/1.1 client busy sending a chunked body: half-open allowed, so it goes on
 * sending after the server has ended its side, and it keeps what it received and every
 * socket error, as a client that reads while it sends sees them.
 */
export interface SendingClient {
  socket: Socket;
  received(): string;
  errors: string[];
  closed: Promise<unknown>;
  /** Resolves once `text` arrived, or after `timeoutMs` whatever arrived. */
  until(text: string, timeoutMs?: number): Promise<string>;
}

export async function openSendingClient(port: number, host: string): Promise<SendingClient> {
  const socket = connect({ port, host, allowHalfOpen: true });
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let received = '';
  const errors: string[] = [];
  socket.setEncoding('latin1');
  socket.on('data', (piece: string) => (received += piece));
  socket.on('error', (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message));
  const closed = new Promise((resolve) => socket.once('close', resolve));
  return {
    socket,
    received: () => received,
    errors,
    closed,
    async until(text, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!received.includes(text) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      return received;
    },
  };
}

/** One chunk of a chunked body: `bytes` of filler in its framing. */
export function bodyChunk(bytes: number): Buffer {
  return Buffer.concat([Buffer.from(`${bytes.toString(16)}\r\n`), Buffer.alloc(bytes, 0x71), Buffer.from('\r\n')]);
}
