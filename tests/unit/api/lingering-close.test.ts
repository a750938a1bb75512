import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { LINGER_BYTES, LINGER_GRACE_BYTES, lingerBeforeClosing } from '../../../services/api/lingering-close';
import { bodyChunk, openSendingClient, type SendingClient } from '../../harness/sending-client';

/**
 * The lingering close over a bare node:http server whose handler refuses a body after its
 * first chunk, as the API refuses one past its limit: the client goes on sending after the
 * answer (half-open, as a client busy sending is).
 */
describe('lingerBeforeClosing', () => {
  let server: Server;
  let prepare: (req: IncomingMessage) => void;

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      req.once('data', () => {
        req.pause();
        prepare(req);
        res.writeHead(413, { 'Content-Type': 'text/plain', Connection: 'close' }).end('too large}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  async function refusedExchange(): Promise<SendingClient> {
    const { port } = server.address() as AddressInfo;
    const client = await openSendingClient(port, '127.0.0.1');
    client.socket.write('POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n');
    client.socket.write(bodyChunk(256 * 1024));
    expect(await client.until('}', 10_000)).toMatch(/^HTTP\/1\.1 413 /);
    return client;
  }

  /** Writes up to `bytes` of body in chunks of `chunkBytes`, each once the last is taken and a millisecond more; answers what was written before an error stopped it. */
  async function keepSending(client: SendingClient, bytes: number, chunkBytes = 64 * 1024): Promise<number> {
    let written = 0;
    while (written < bytes && client.errors.length === 0 && !client.socket.destroyed) {
      const piece = bodyChunk(chunkBytes);
      await new Promise<void>((resolve) => client.socket.write(piece, () => resolve()));
      written += chunkBytes;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    return written;
  }

  it('reads on after the answer and closes once the client ends its body: no reset', async () => {
    prepare = lingerBeforeClosing;
    const exchange = await refusedExchange();
    await new Promise((resolve) => setTimeout(resolve, 200));
    await keepSending(exchange, 256 * 1024);
    exchange.socket.end('0\r\n\r\n');
    await exchange.closed;
    expect(exchange.errors).toEqual([]);
  });

  it('gives a client that is slow to read its answer time to read it, however much of its body was already on its way', async () => {
    prepare = lingerBeforeClosing;
    const { port } = server.address() as AddressInfo;
    const client = await openSendingClient(port, '127.0.0.1');
    // A client busy sending, not scheduled to read for a while: what it sent before it reads
    // sits in the sockets' buffers, and the server reads it all at once after the answer.
    client.socket.pause();
    client.socket.write('POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n');
    client.socket.write(bodyChunk(4 * LINGER_BYTES));
    await new Promise((resolve) => setTimeout(resolve, 100));
    client.socket.resume();
    expect(await client.until('}', 10_000)).toMatch(/^HTTP\/1\.1 413 /);
    client.socket.destroy();
  });

  it.each([
    // 16 KiB a millisecond at most: the grace ends before LINGER_GRACE_BYTES have arrived, and LINGER_BYTES more close it.
    { sender: 'sends on past the grace and LINGER_BYTES after it', chunkBytes: 16 * 1024, closedBefore: LINGER_GRACE_BYTES },
    { sender: 'sends LINGER_GRACE_BYTES before the grace is out', chunkBytes: 1024 * 1024, closedBefore: 4 * LINGER_GRACE_BYTES },
  ])('closes under a client that $sender', async ({ chunkBytes, closedBefore }) => {
    prepare = lingerBeforeClosing;
    const exchange = await refusedExchange();
    const written = await keepSending(exchange, 4 * LINGER_GRACE_BYTES, chunkBytes);
    await exchange.closed;
    expect(exchange.errors).toEqual([expect.stringMatching(/^(EPIPE|ECONNRESET)$/)]);
    expect(written).toBeLessThan(closedBefore);
  });

  it('leaves the close to Node where a socket has no destroySoon to stand in for (the seam\'s fallback): the answer still arrives', async () => {
    prepare = (req) => {
      Object.defineProperty(req.socket, 'destroySoon', { value: undefined, configurable: true });
      lingerBeforeClosing(req);
      expect((req.socket as Socket & { destroySoon?: unknown }).destroySoon).toBeUndefined();
    };
    const exchange = await refusedExchange();
    exchange.socket.end();
    await exchange.closed;
    expect(exchange.received()).toMatch(/^HTTP\/1\.1 413 /);
    expect(exchange.received()).toContain('too large}');
  });
});
