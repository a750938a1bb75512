import net from 'node:net';
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

/** One keep-alive connection that sends a prebuilt request and reads responses by Content-Length. */
class RawConnection {
  private buffer: Buffer = Buffer.alloc(0);
  alive = true;
  private pending: (() => void) | undefined;
  private status = 0;
  readonly socket: net.Socket;

  constructor(host: string, port: number, onClose: () => void) {
    this.socket = net.connect({ host, port, noDelay: true });
    this.socket.on('data', (chunk: Buffer) => this.receive(chunk));
    this.socket.on('error', () => undefined);
    this.socket.on('close', onClose);
  }

  get busy(): boolean {
    return this.pending !== undefined;
  }

  /** Sends the request; `done` receives the status code (0 on a broken connection). */
  send(bytes: Buffer, done: (status: number) => void): void {
    this.pending = () => done(this.status);
    this.socket.write(bytes);
  }

  fail(): void {
    this.alive = false;
    const pending = this.pending;
    this.pending = undefined;
    this.status = 0;
    pending?.();
  }

  private receive(chunk: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    for (;;) {
      const headerEnd = this.buffer.indexOf('\r\n\r\n');
      if (headerEnd < 0) return;
      const head = this.buffer.subarray(0, headerEnd).toString('latin1');
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (this.buffer.length < headerEnd + 4 + length) return;
      this.status = Number(head.slice(9, 12));
      this.buffer = this.buffer.subarray(headerEnd + 4 + length);
      const pending = this.pending;
      this.pending = undefined;
      pending?.();
    }
  }
}

/**
 * Open-loop load at a steady rate: request n is due at start + n/rate, sent then (or as soon
 * as a connection is free) whether or not earlier ones have answered, and its latency counts
 * from when it was due. This is what "1,000 submits/s offered" means; autocannon's rate
 * option instead sends each second's quota in a burst at the top of the second, which
 * measures the burst. Requests are prebuilt bytes on raw keep-alive sockets, so the sender
 * costs the machine about what autocannon does.
 */
async function paced(request: LoadRequest & { overallRate: number }): Promise<LoadResult> {
  const target = new URL(request.url);
  const body = Buffer.from(request.body);
  const bytes = Buffer.concat([
    Buffer.from(
      `POST ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nConnection: keep-alive\r\n` +
        `Authorization: Bearer ${request.token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
    ),
    body,
  ]);
  const durationMs = (request.durationSeconds ?? 10) * 1_000;
  const intervalMs = 1_000 / request.overallRate;
  const total = Math.floor(durationMs / intervalMs);
  const latencies: number[] = [];
  let accepted = 0;
  let non2xx = 0;
  let errors = 0;
  let sent = 0;
  let answered = 0;
  const waiting: number[] = [];
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));

  const connections: RawConnection[] = [];
  const dispatch = (connection: RawConnection) => {
    const dueAt = waiting.shift();
    if (dueAt === undefined) return;
    connection.send(bytes, (status) => {
      latencies.push(performance.now() - dueAt);
      if (status >= 200 && status < 300) accepted += 1;
      else if (status === 0) errors += 1;
      else non2xx += 1;
      answered += 1;
      if (answered === total) finish();
      else if (connection.alive) dispatch(connection);
    });
  };
  for (let index = 0; index < request.connections; index += 1) {
    const connection: RawConnection = new RawConnection(target.hostname, Number(target.port), () => connection.fail());
    connections.push(connection);
  }
  await Promise.all(connections.map((connection) => new Promise((resolve) => connection.socket.once('connect', resolve))));

  const started = performance.now();
  const tick = setInterval(() => {
    const due = Math.min(Math.floor((performance.now() - started) / intervalMs) + 1, total);
    while (sent < due) waiting.push(started + sent++ * intervalMs);
    for (const connection of connections) if (connection.alive && !connection.busy && waiting.length > 0) dispatch(connection);
    if (connections.every((connection) => !connection.alive)) {
      // The server went away: what was never sent counts as failed, and the run ends.
      errors += total - answered;
      answered = total;
      finish();
    }
  }, 1);
  await finished;
  clearInterval(tick);
  const seconds = (performance.now() - started) / 1_000;
  for (const connection of connections) connection.socket.destroy();
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
