import autocannon from 'autocannon';
import type { LoadRequest, LoadResult } from './load-generator';

/**
 * The same load through an independent generator, autocannon, in its own process: a check
 * on the bench's own generator (bench/load-generator.ts), whose prebuilt requests cost the
 * machine less. Each connection sends as the users in turn (request n as user n mod their
 * number), as a pool of clients would. Reads one JSON LoadRequest, prints one JSON LoadResult.
 */
async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2] ?? '{}') as LoadRequest;
  const target = new URL(request.url);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const result = await autocannon({
    url: target.origin,
    connections: request.connections,
    duration: request.durationSeconds ?? 10,
    amount: request.amount,
    overallRate: request.overallRate,
    requests: request.tokens.map((token) => ({
      method: 'POST' as const,
      path: target.pathname,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: request.body,
    })),
  });
  const seconds = (performance.now() - started) / 1_000;
  const cpu = process.cpuUsage(cpuBefore);
  const accepted = result['2xx'];
  const output: LoadResult = {
    requests: result.requests.total,
    seconds,
    requestsPerSecond: accepted / result.duration,
    accepted,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
    cores: (cpu.user + cpu.system) / 1e6 / seconds,
  };
  process.stdout.write(`${JSON.stringify(output)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`autocannon load: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
