import net from 'node:net';

/**
 * Drives the HTTP API from its own process, so the load generator's CPU is not charged to
 * the API. Reads one JSON argument, prints one JSON line with the result.
 */
export interface LoadRequest {
  url: string;
  /** Bearer tokens of the users the load speaks for: connection n sends as user n mod their number. */
  tokens: string[];
  body: string;
  connections: number;
  /** Requests per second offered at a steady pace (open loop); unset means as fast as answered (closed loop). */
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

  constructor(
    host: string,
    port: number,
    /** The request this connection sends, its user's. */
    readonly bytes: Buffer,
    onClose: () => void,
  ) {
    this.socket = net.connect({ host, port, noDelay: true });
    this.socket.on('data', (chunk: Buffer) => this.receive(chunk));
    this.socket.on('error', () => undefined);
    this.socket.on('close', onClose);
  }

  get busy(): boolean {
    return this.pending !== undefined;
  }

  /** Sends the request; `done` receives the status code (0 on a broken connection). */
  send(done: (status: number) => void): void {
    this.pending = () => done(this.status);
    this.socket.write(this.bytes);
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

/** The request each user's connections send, prebuilt. */
function requestBytes(request: LoadRequest): { target: URL; bytesPerUser: Buffer[] } {
  if (request.tokens.length === 0) throw new Error('load generator: no tokens');
  const target = new URL(request.url);
  const body = Buffer.from(request.body);
  const bytesPerUser = request.tokens.map((token) => {
    const head =
      `POST ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nConnection: keep-alive\r\n` +
      `Authorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    return Buffer.concat([Buffer.from(head), body]);
  });
  return { target, bytesPerUser };
}

async function openConnections(target: URL, bytesPerUser: Buffer[], count: number): Promise<RawConnection[]> {
  const connections: RawConnection[] = [];
  for (let index = 0; index < count; index += 1) {
    const connection: RawConnection = new RawConnection(target.hostname, Number(target.port), bytesPerUser[index % bytesPerUser.length] as Buffer, () => connection.fail());
    connections.push(connection);
  }
  await Promise.all(connections.map((connection) => new Promise((resolve) => connection.socket.once('connect', resolve))));
  return connections;
}

/** Tallies answers as they come. */
class Tally {
  readonly latencies: number[] = [];
  accepted = 0;
  non2xx = 0;
  errors = 0;

  record(status: number, latencyMs: number): void {
    this.latencies.push(latencyMs);
    if (status >= 200 && status < 300) this.accepted += 1;
    else if (status === 0) this.errors += 1;
    else this.non2xx += 1;
  }

  result(requests: number, seconds: number): LoadResult {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const round = (value: number) => Math.round(value * 10) / 10;
    return {
      requests,
      seconds,
      requestsPerSecond: requests / seconds,
      accepted: this.accepted,
      non2xx: this.non2xx,
      errors: this.errors,
      timeouts: 0,
      latencyMs: { p50: round(percentile(sorted, 0.5)), p90: round(percentile(sorted, 0.9)), p99: round(percentile(sorted, 0.99)), max: round(sorted.at(-1) ?? 0) },
      cores: 0,
    };
  }
}

/**
 * Closed loop, as fast as the server answers: each connection sends its next request the
 * moment the previous one is answered, for a duration or until `amount` requests went out.
 * Prebuilt bytes on raw keep-alive sockets cost the machine about half of what autocannon
 * did per request (0.05 against 0.1 ms), CPU the platform under test gets instead.
 */
async function closedLoop(request: LoadRequest): Promise<LoadResult> {
  const { target, bytesPerUser } = requestBytes(request);
  const connections = await openConnections(target, bytesPerUser, request.connections);
  const tally = new Tally();
  const limit = request.amount ?? Number.POSITIVE_INFINITY;
  const started = performance.now();
  const endsAt = request.amount === undefined ? started + (request.durationSeconds ?? 10) * 1_000 : Number.POSITIVE_INFINITY;
  let sent = 0;
  let inFlight = 0;
  let starting = true;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const next = (connection: RawConnection) => {
    if (!connection.alive || sent >= limit || performance.now() >= endsAt) {
      if (inFlight === 0 && !starting) finish();
      return;
    }
    sent += 1;
    inFlight += 1;
    const sentAt = performance.now();
    connection.send((status) => {
      inFlight -= 1;
      tally.record(status, performance.now() - sentAt);
      next(connection);
    });
  };
  for (const connection of connections) next(connection);
  starting = false;
  if (inFlight === 0) finish();
  await finished;
  const seconds = (performance.now() - started) / 1_000;
  for (const connection of connections) connection.socket.destroy();
  return tally.result(sent, seconds);
}

/**
 * Open-loop load at a steady rate: request n is due at start + n/rate, sent then (or as soon
 * as a connection is free) whether or not earlier ones have answered, and its latency counts
 * from when it was due. This is what "1,000 submits/s offered" means; a rate option that
 * sends each second's quota in a burst at the top of the second measures the burst instead.
 */
async function paced(request: LoadRequest & { overallRate: number }): Promise<LoadResult> {
  const { target, bytesPerUser } = requestBytes(request);
  const durationMs = (request.durationSeconds ?? 10) * 1_000;
  const intervalMs = 1_000 / request.overallRate;
  const total = Math.floor(durationMs / intervalMs);
  const tally = new Tally();
  let sent = 0;
  let answered = 0;
  const waiting: number[] = [];
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));

  const dispatch = (connection: RawConnection) => {
    const dueAt = waiting.shift();
    if (dueAt === undefined) return;
    connection.send((status) => {
      tally.record(status, performance.now() - dueAt);
      answered += 1;
      if (answered === total) finish();
      else if (connection.alive) dispatch(connection);
    });
  };
  const connections = await openConnections(target, bytesPerUser, request.connections);

  const started = performance.now();
  const tick = setInterval(() => {
    const due = Math.min(Math.floor((performance.now() - started) / intervalMs) + 1, total);
    while (sent < due) waiting.push(started + sent++ * intervalMs);
    for (const connection of connections) if (connection.alive && !connection.busy && waiting.length > 0) dispatch(connection);
    if (connections.every((connection) => !connection.alive)) {
      // The server went away: what was never sent counts as failed, and the run ends.
      tally.errors += total - answered;
      answered = total;
      finish();
    }
  }, 1);
  await finished;
  clearInterval(tick);
  const seconds = (performance.now() - started) / 1_000;
  for (const connection of connections) connection.socket.destroy();
  return tally.result(sent, seconds);
}

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2] ?? '{}') as LoadRequest;
  const cpuBefore = process.cpuUsage();
  const result = request.overallRate === undefined ? await closedLoop(request) : await paced({ ...request, overallRate: request.overallRate });
  result.cores = cpuMicros(process.cpuUsage(cpuBefore)) / 1e6 / result.seconds;
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`load generator: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
