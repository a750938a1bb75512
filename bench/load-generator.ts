import http from 'node:http';
import autocannon from 'autocannon';

/**
 * Drives the HTTP API from its own process, so the load generator's CPU is not charged to
 * the API. Reads one JSON argument, prints one JSON line with the result.
 */
export interface LoadRequest {
  url: string;
  token: string;
  body: string;
  connections: number;
  /** Requests per second offered at a steady pace (open loop); unset means as fast as possible (autocannon). */
  overallRate?: number;
  durationSeconds?: number;
  amount?: number;
}

export interface LoadResult {
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  accepted: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** CPU this process used, in cores (its own report: it has exited before the bench could read /proc). */
  cores: number;
}

const cpuMicros = (usage: NodeJS.CpuUsage) => usage.user + usage.system;

function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)] ?? 0;
}

/**
 * Open-loop load at a steady rate: request n is due at start + n/rate, sent then whether
 * or not earlier ones have answered, and its latency counts from when it was due. This is
 * what "1,000 submits/s offered" means; autocannon's rate option instead sends each
 * second's quota in a burst at the top of the second, which measures the burst.
 */
async function paced(request: LoadRequest & { overallRate: number }): Promise<LoadResult> {
  const target = new URL(request.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: request.connections });
  const durationMs = (request.durationSeconds ?? 10) * 1_000;
  const intervalMs = 1_000 / request.overallRate;
  const latencies: number[] = [];
  let accepted = 0;
  let non2xx = 0;
  let errors = 0;
  let sent = 0;
  const inFlight = new Set<Promise<void>>();
  const send = (dueAt: number) => {
    const done = new Promise<void>((resolve) => {
      const call = http.request(
        {
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          method: 'POST',
          agent,
          headers: { authorization: `Bearer ${request.token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(request.body) },
        },
        (response) => {
          response.resume();
          response.on('end', () => {
            latencies.push(performance.now() - dueAt);
            if (response.statusCode !== undefined && response.statusCode < 300) accepted += 1;
            else non2xx += 1;
            resolve();
          });
        },
      );
      call.on('error', () => {
        errors += 1;
        resolve();
      });
      call.end(request.body);
    });
    inFlight.add(done);
    void done.then(() => inFlight.delete(done));
  };
  const started = performance.now();
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const elapsed = performance.now() - started;
      const due = Math.min(Math.floor(elapsed / intervalMs) + 1, Math.floor(durationMs / intervalMs));
      while (sent < due) send(started + sent++ * intervalMs);
      if (elapsed >= durationMs) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
  await Promise.all([...inFlight]);
  const seconds = (performance.now() - started) / 1_000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const round = (value: number) => Math.round(value * 10) / 10;
  return {
    requests: sent,
    seconds,
    requestsPerSecond: sent / seconds,
    accepted,
    non2xx,
    errors,
    timeouts: 0,
    latencyMs: { p50: round(percentile(latencies, 0.5)), p90: round(percentile(latencies, 0.9)), p99: round(percentile(latencies, 0.99)), max: round(latencies.at(-1) ?? 0) },
    cores: 0,
  };
}

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2] ?? '{}') as LoadRequest;
  const cpuBefore = process.cpuUsage();
  if (request.overallRate !== undefined) {
    const result = await paced({ ...request, overallRate: request.overallRate });
    result.cores = cpuMicros(process.cpuUsage(cpuBefore)) / 1e6 / result.seconds;
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const result = await autocannon({
    url: request.url,
    method: 'POST',
    headers: { authorization: `Bearer ${request.token}`, 'content-type': 'application/json' },
    body: request.body,
    connections: request.connections,
    pipelining: 1,
    ...(request.amount !== undefined ? { amount: request.amount } : { duration: request.durationSeconds ?? 10 }),
    timeout: 10,
  });
  const output: LoadResult = {
    requests: result.requests.total,
    seconds: result.duration,
    requestsPerSecond: result.requests.total / result.duration,
    accepted: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
    cores: cpuMicros(process.cpuUsage(cpuBefore)) / 1e6 / result.duration,
  };
  process.stdout.write(`${JSON.stringify(output)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`load generator: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
