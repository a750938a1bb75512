import { spawn } from 'node:child_process';
import path from 'node:path';
import { ECHO_BODY, runLoad } from './driver';
import { cpuSeconds } from './proc-stats';

export interface HttpFloor {
  requestsPerSecond: number;
  /** CPU the server process spent per request, in microseconds. */
  serverCpuMicrosPerRequest: number;
}

/**
 * Drives the bare HTTP stack (bench/http-floor-server.ts) exactly as the platform's API is
 * driven, and reports its CPU per request: the part of the API's cost no code of ours adds.
 */
export async function measureHttpFloor(options: { seconds: number; connections: number; plainServer?: boolean }): Promise<HttpFloor> {
  const args = [path.join(__dirname, 'http-floor-server.js'), ...(options.plainServer ? ['--plain'] : [])];
  const server = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      server.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
      server.once('exit', (code) => reject(new Error(`the HTTP floor server exited with ${code}`)));
    });
    const url = `http://127.0.0.1:${port}/v1/jobs`;
    // Warm up the JIT before measuring, as the platform is warmed up before its runs.
    await runLoad({ url, tokens: ['unused'], body: ECHO_BODY, connections: options.connections, amount: 3_000 });
    const pid = server.pid ?? 0;
    const before = cpuSeconds(pid);
    const load = await runLoad({ url, tokens: ['unused'], body: ECHO_BODY, connections: options.connections, durationSeconds: options.seconds });
    const used = cpuSeconds(pid) - before;
    return { requestsPerSecond: load.requestsPerSecond, serverCpuMicrosPerRequest: (used * 1e6) / load.requests };
  } finally {
    server.kill('SIGTERM');
  }
}
