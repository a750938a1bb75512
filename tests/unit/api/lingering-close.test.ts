import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { LINGER_BYTES, lingerBeforeClosing } from '../../../services/api/lingering-close';

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

  interface Exchange {
    socket: Socket;
    received: () => string;
    errors: string[];
    closed: Promise<unknown>;
  }

  async function refusedExchange(): Promise<Exchange> {
    const { port } = server.address() as AddressInfo;
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    let received = '';
    const errors: string[] = [];
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write('POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n');
    socket.write(chunk(256 * 1024));
    const deadline = Date.now() + 10_000;
    while (!received.includes('}') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(received).toMatch(/^HTTP\/1\.1 413 /);
    return { socket, received: () => received, errors, closed };
  }

  function chunk(bytes: number): Buffer {
    return Buffer.concat([Buffer.from(`${bytes.toString(16)}\r\n`), Buffer.alloc(bytes, 0x71), Buffer.from('\r\n')]);
  }

  /** Writes up to `bytes` of body in 64 KiB chunks, each once the last is taken; answers what was written before an error stopped it. */
  async function keepSending(exchange: Exchange, bytes: number): Promise<number> {
    let written = 0;
    while (written < bytes && exchange.errors.length === 0 && !exchange.socket.destroyed) {
      const piece = chunk(64 * 1024);
      await new Promise<void>((resolve) => exchange.socket.write(piece, () => resolve()));
      written += 64 * 1024;
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

  it('closes under a client that sends on past LINGER_BYTES after the answer', async () => {
    prepare = lingerBeforeClosing;
    const exchange = await refusedExchange();
    const written = await keepSending(exchange, 8 * LINGER_BYTES);
    await exchange.closed;
    expect(exchange.errors).toEqual([expect.stringMatching(/^(EPIPE|ECONNRESET)$/)]);
    expect(written).toBeLessThan(8 * LINGER_BYTES);
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
