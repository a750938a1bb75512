import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { PATHS } from '../contract';
import type { Liveness } from './liveness';

/**
 * What the worker's /readyz reports; only `ready` answers 200. A worker is ready when it
 * can take jobs: started (its queue connection made), not draining, and Redis answers it
 * now. Liveness (/healthz) is a separate question: a worker waiting for Redis is alive.
 */
export interface Readiness {
  status: 'ready' | 'starting' | 'draining' | 'waiting for redis';
  /** Why not, when Redis is the reason (the check's error, never a secret). */
  detail?: string;
}

export interface HealthServerOptions {
  port: number;
  host?: string;
  registry: Registry;
  /** Liveness: `stuck` (503) when the worker loop shows no progress while Redis answers others; the rest is 200. */
  liveness(): Liveness;
  /** Readiness: see Readiness. Answers within the probe's timeout (its checks keep their own deadline). */
  readiness(): Promise<Readiness>;
}

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

/** The worker's own small listener: /metrics, /healthz and /readyz for probes and Prometheus. */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, contentType = 'application/json') => {
      res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, JSON.stringify({ status: 'method not allowed' }));
    if (path === PATHS.healthz) {
      const status = options.liveness();
      return reply(status === 'stuck' ? 503 : 200, JSON.stringify({ status }));
    }
    if (path === PATHS.readyz) {
      options.readiness().then(
        (readiness) => reply(readiness.status === 'ready' ? 200 : 503, JSON.stringify(readiness)),
        (error: unknown) => reply(503, JSON.stringify({ status: 'error', detail: String(error) })),
      );
      return;
    }
    if (path === PATHS.metrics) {
      options.registry.metrics().then(
        (body) => reply(200, body, options.registry.contentType),
        (error: unknown) => reply(500, JSON.stringify({ status: 'error', detail: String(error) })),
      );
      return;
    }
    reply(404, JSON.stringify({ status: 'not found' }));
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  let closing: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
