import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { withTimeout } from '../../../services/core/timeout';

/** Holds the event loop, as one request's large body does while it is parsed. */
function busyFor(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // Nothing else runs meanwhile: that is the point.
  }
}

describe('withTimeout', () => {
  let server: ChildProcess;
  let port: number;

  beforeAll(async () => {
    // Another process, answering every question at once, like a dependency that is there: its answer arrives while this process is busy.
    server = spawn(process.execPath, ['-e', "require('net').createServer((s) => s.on('data', () => s.write('answer\\n'))).listen(0, '127.0.0.1', function () { console.log(this.address().port) })"], { stdio: ['ignore', 'pipe', 'inherit'] });
    port = Number(await new Promise<string>((resolve) => server.stdout?.once('data', (data: Buffer) => resolve(data.toString()))));
  });

  afterAll(() => {
    server.kill();
  });

  /** Asks the server and settles with its answer, read when the event loop next reads sockets. */
  async function ask(): Promise<{ answer: Promise<string>; socket: net.Socket }> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const answer = new Promise<string>((resolve) => socket.once('data', (data) => resolve(data.toString().trim())));
    socket.write('question\n');
    return { answer, socket };
  }

  it('takes an answer that arrived in time but was read late, because the event loop was busy past the deadline', async () => {
    const { answer, socket } = await ask();
    try {
      const bounded = withTimeout(answer, 50, 'the dependency did not answer');
      // The answer lands in the socket within a millisecond; the loop gets to it only after the deadline.
      busyFor(200);
      await expect(bounded).resolves.toBe('answer');
    } finally {
      socket.destroy();
    }
  });

  it('rejects with the message when nothing answers', async () => {
    await expect(withTimeout(new Promise(() => undefined), 20, 'the dependency did not answer')).rejects.toThrow('the dependency did not answer');
    await expect(withTimeout(new Promise(() => undefined), 20, () => new RangeError('own type'))).rejects.toBeInstanceOf(RangeError);
  });

  it('settles with the work when it comes first, and leaves no timer behind', async () => {
    await expect(withTimeout(Promise.resolve(7), 10_000, 'late')).resolves.toBe(7);
    await expect(withTimeout(Promise.reject(new Error('refused')), 10_000, 'late')).rejects.toThrow('refused');
  });
});
