import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ECHO_BODY, runLoad } from './driver';
import type { LoadResult } from './load-generator';
import { cpuSeconds } from './proc-stats';

/**
 * How bench/http-floor-server.ts serves: `express` as the API serves (services/api/http-server.ts),
 * `plain` the same app by a plain `createServer(app)`, `node` a 202 from node:http alone.
 */
export type FloorServer = 'express' | 'plain' | 'node';

const SERVER_FLAGS: Record<FloorServer, string[]> = { express: [], plain: ['--plain'], node: ['--node'] };

export interface HttpFloor {
  requestsPerSecond: number;
  /** CPU the server process spent per request, in microseconds. */
  serverCpuMicrosPerRequest: number;
}

interface RunningFloor {
  url: string;
  pid: number;
  stop(): void;
}

async function startFloorServer(server: FloorServer): Promise<RunningFloor> {
  const child: ChildProcess = spawn(process.execPath, [path.join(__dirname, 'http-floor-server.js'), ...SERVER_FLAGS[server]], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout?.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
      child.once('exit', (code) => reject(new Error(`the HTTP floor server exited with ${code}`)));
    });
    return { url: `http://127.0.0.1:${port}/v1/jobs`, pid: child.pid ?? 0, stop: () => child.kill('SIGTERM') };
  } catch (error) {
    child.kill('SIGTERM');
    throw error;
  }
}

async function withFloorServer<T>(server: FloorServer, connections: number, use: (floor: RunningFloor) => Promise<T>): Promise<T> {
  const floor = await startFloorServer(server);
  try {
    // Warm up the JIT before measuring, as the platform is warmed up before its runs.
    await runLoad({ url: floor.url, tokens: ['unused'], body: ECHO_BODY, connections, amount: 3_000 });
    return await use(floor);
  } finally {
    floor.stop();
  }
}

/**
 * Drives the bare HTTP stack exactly as the platform's API is driven, and reports its CPU
 * per request: the part of the API's cost no code of ours adds.
 */
export function measureHttpFloor(options: { seconds: number; connections: number; server: FloorServer }): Promise<HttpFloor> {
  return withFloorServer(options.server, options.connections, async (floor) => {
    const before = cpuSeconds(floor.pid);
    const load = await runLoad({ url: floor.url, tokens: ['unused'], body: ECHO_BODY, connections: options.connections, durationSeconds: options.seconds });
    const used = cpuSeconds(floor.pid) - before;
    return { requestsPerSecond: load.requestsPerSecond, serverCpuMicrosPerRequest: (used * 1e6) / load.requests };
  });
}

/**
 * The submit latency autocannon reports for a server that does nothing of ours, offered the
 * rate and connections the platform is offered: what the load generator and the machine
 * alone make of that figure.
 */
export function measureFloorLatency(options: { seconds: number; connections: number; rate: number; server: FloorServer }): Promise<LoadResult> {
  return withFloorServer(options.server, options.connections, (floor) =>
    runLoad(
      { url: floor.url, tokens: ['unused'], body: ECHO_BODY, connections: options.connections, overallRate: options.rate, durationSeconds: options.seconds },
      'autocannon',
    ),
  );
}
