import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { createExpressServer } from './http-server';

/**
 * Above the 60 s idle timeout of AWS load balancers, so the balancer, not us, closes idle
 * keep-alive connections (otherwise it may send a request on a socket we are closing).
 */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
const DRAIN_POLL_MS = 50;

export interface RunningServer {
  server: Server;
  port: number;
}

let running: RunningServer | undefined;

/** Listens on `port` (0 picks a free one) and resolves once the socket is bound. */
export async function startWebServer(app: Express, port: number, host?: string): Promise<RunningServer> {
  if (running) throw new Error('the web server is already running');
  const server = createExpressServer(app);
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  running = { server, port: (server.address() as AddressInfo).port };
  return running;
}

/**
 * Stops accepting connections, lets in-flight requests finish (closing each keep-alive
 * connection as it goes idle), and after `graceMs` cuts whatever is left (long SSE
 * streams, stuck clients). Resolves when every connection is gone. Idempotent.
 */
export async function stopWebServer(graceMs = 10_000): Promise<void> {
  const current = running;
  if (!current) return;
  running = undefined;
  const { server } = current;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const idleSweep = setInterval(() => server.closeIdleConnections(), DRAIN_POLL_MS);
  const deadline = setTimeout(() => server.closeAllConnections(), graceMs);
  try {
    server.closeIdleConnections();
    await closed;
  } finally {
    clearInterval(idleSweep);
    clearTimeout(deadline);
  }
}
