import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Logger } from '../core/logger';
import type { MetricsSource } from './dependencies';

const METRICS_REQUEST = 'platform-kit:api-metrics-request';
const METRICS_RESPONSE = 'platform-kit:api-metrics-response';
/** A crashing worker is replaced, but not in a tight loop. */
const RESPAWN_DELAY_MS = 1_000;
const METRICS_TIMEOUT_MS = 5_000;

interface MetricsRequest {
  type: typeof METRICS_REQUEST;
  id: number;
}

interface MetricsResponse {
  type: typeof METRICS_RESPONSE;
  id: number;
  contentType?: string;
  body?: string;
  error?: string;
}

/**
 * The primary of an API cluster: forks `processes` workers that share the listening
 * port, replaces any that die, answers their /metrics with the sum over all of them
 * (prom-client's AggregatorRegistry), and on SIGTERM/SIGINT passes the signal on and
 * waits for every worker's graceful shutdown.
 */
export function runClusterPrimary(options: { processes: number; graceMs: number; log: Logger }): void {
  const { log } = options;
  const aggregator = new AggregatorRegistry();
  let stopping = false;

  const fork = (): Worker => cluster.fork();
  for (let i = 0; i < options.processes; i += 1) fork();

  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    log.error({ pid: worker.process.pid, code, signal }, 'API worker exited; replacing it');
    setTimeout(fork, RESPAWN_DELAY_MS);
  });

  cluster.on('message', (worker, message: MetricsRequest) => {
    if (message?.type !== METRICS_REQUEST) return;
    aggregator.clusterMetrics().then(
      (body) => worker.send({ type: METRICS_RESPONSE, id: message.id, contentType: aggregator.contentType, body } satisfies MetricsResponse),
      (error: Error) => worker.send({ type: METRICS_RESPONSE, id: message.id, error: error.message } satisfies MetricsResponse),
    );
  });

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, workers: Object.keys(cluster.workers ?? {}).length }, 'stopping API workers');
    const workers = Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => worker !== undefined);
    const killer = setTimeout(() => workers.forEach((worker) => worker.process.kill('SIGKILL')), options.graceMs + 5_000);
    let remaining = workers.length;
    const done = () => {
      clearTimeout(killer);
      log.info('API cluster stopped');
      log.flush(() => process.exit(0));
    };
    if (remaining === 0) done();
    for (const worker of workers) {
      worker.once('exit', () => {
        remaining -= 1;
        if (remaining === 0) done();
      });
      worker.process.kill(signal);
    }
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/**
 * /metrics inside a cluster worker: asks the primary for the aggregate of every worker,
 * so a scrape that lands on any worker sees the whole process group.
 */
export function clusterWorkerMetricsSource(registry: Registry): MetricsSource {
  // Registers this worker's answer to the primary's collection requests.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
  const pending = new Map<number, { resolve: (value: { contentType: string; body: string }) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
  let nextId = 0;
  process.on('message', (message: MetricsResponse) => {
    if (message?.type !== METRICS_RESPONSE) return;
    const request = pending.get(message.id);
    if (!request) return;
    pending.delete(message.id);
    clearTimeout(request.timer);
    if (message.error !== undefined || message.body === undefined) request.reject(new Error(message.error ?? 'empty metrics answer'));
    else request.resolve({ contentType: message.contentType ?? registry.contentType, body: message.body });
  });
  return () =>
    new Promise((resolve, reject) => {
      const id = (nextId += 1);
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error('the cluster primary did not answer the metrics request'));
      }, METRICS_TIMEOUT_MS);
      pending.set(id, { resolve, reject, timer });
      process.send?.({ type: METRICS_REQUEST, id } satisfies MetricsRequest);
    });
}
