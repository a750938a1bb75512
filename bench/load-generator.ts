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
  /** Requests per second offered across all connections; unset means as fast as possible. */
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
}

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2] ?? '{}') as LoadRequest;
  const result = await autocannon({
    url: request.url,
    method: 'POST',
    headers: { authorization: `Bearer ${request.token}`, 'content-type': 'application/json' },
    body: request.body,
    connections: request.connections,
    pipelining: 1,
    ...(request.overallRate !== undefined && { overallRate: request.overallRate }),
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
  };
  process.stdout.write(`${JSON.stringify(output)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`load generator: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
