import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const SERVER = path.resolve(__dirname, '../../../bench/http-floor-server.ts');

/** Starts bench/http-floor-server.ts in one of its modes and resolves with its port. */
function startFloor(flags: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['-r', require.resolve('@swc-node/register'), SERVER, ...flags], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout?.once('data', (chunk: Buffer) => resolve({ child, port: Number(chunk.toString().trim()) }));
    child.once('exit', (code) => reject(new Error(`floor server exited with ${code}`)));
  });
}

function stopped(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

// The bench compares the platform's submit with these servers: they must answer it as the API
// does (202, a Location, the accepted job echoing its input), or the comparison measures less.
describe.each([
  ['express', []],
  ['plain', ['--plain']],
  ['node', ['--node']],
])('the HTTP floor server (%s)', (_mode, flags) => {
  it('answers a submit with 202, a Location and the accepted job', async () => {
    const { child, port } = await startFloor(flags);
    try {
      const input = { payload: { bench: true } };
      const response = await fetch(`http://127.0.0.1:${port}/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'echo', input }),
      });
      expect(response.status).toBe(202);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(response.headers.get('location')).toMatch(/^\/v1\/jobs\/[0-9a-f-]{36}$/);
      const job = (await response.json()) as Record<string, unknown>;
      expect(job).toMatchObject({ type: 'echo', status: 'queued', input: { type: 'echo', input }, attempts: 0 });
    } finally {
      await stopped(child);
    }
  });
});
