import net, { type AddressInfo } from 'node:net';
import { coalesceWrites } from '../../../services/core/net/coalesce-writes';

async function connectedPair(): Promise<{ client: net.Socket; received: () => Buffer[]; close: () => Promise<void> }> {
  const chunks: Buffer[] = [];
  let serverSide: net.Socket | undefined;
  const server = net.createServer((socket) => {
    serverSide = socket;
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  await new Promise((resolve) => client.once('connect', resolve));
  return {
    client,
    received: () => chunks,
    close: async () => {
      client.destroy();
      serverSide?.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('coalesceWrites', () => {
  it('holds a tick’s writes and sends them together, in order, when the tick ends', async () => {
    const pair = await connectedPair();
    try {
      coalesceWrites(pair.client);
      for (let index = 0; index < 100; index += 1) pair.client.write(`command ${index};`);
      expect(pair.client.writableCorked).toBe(1);
      await Promise.resolve();
      // Replies resolved in this tick may still add writes: the flush waits for them.
      pair.client.write('after a microtask;');
      expect(pair.client.writableCorked).toBe(1);
      await settle();
      expect(pair.client.writableCorked).toBe(0);
      const expected = `${Array.from({ length: 100 }, (_, index) => `command ${index};`).join('')}after a microtask;`;
      expect(Buffer.concat(pair.received()).toString()).toBe(expected);
    } finally {
      await pair.close();
    }
  });

  it('flushes every tick, calls back each write, and wraps a socket once however often it is asked', async () => {
    const pair = await connectedPair();
    try {
      coalesceWrites(pair.client);
      coalesceWrites(pair.client);
      const callbacks: number[] = [];
      pair.client.write('one;', () => callbacks.push(1));
      await settle();
      expect(pair.client.writableCorked).toBe(0);
      pair.client.write('two;', () => callbacks.push(2));
      await settle();
      expect(Buffer.concat(pair.received()).toString()).toBe('one;two;');
      expect(callbacks).toEqual([1, 2]);
    } finally {
      await pair.close();
    }
  });
});
