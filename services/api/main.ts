import cluster from 'node:cluster';
import { setTimeout as sleep } from 'node:timers/promises';
import { apiCautions, type ApiListeningMessage, type Env } from '../contract';
import { loadEnv } from '../core/config';
import { createLogger } from '../core/logger';
import { createMetrics } from '../core/metrics';
import { createRuntime } from '../core/runtime';
import { createApp } from './app';
import { clusterWorkerMetricsSource, runClusterPrimary } from './cluster';
import { dependenciesFromCore, type Lifecycle } from './dependencies';
import { builtConsoleDir } from './routes/console';
import { startWebServer, stopWebServer } from './server';

/**
 * Between readiness turning 503 and the listener closing: long enough for a load
 * balancer or Kubernetes to take the pod out of rotation, so no request meets a closed port.
 */
function readinessPropagationMs(env: Env): number {
  return env.NODE_ENV === 'production' ? Math.min(5_000, Math.floor(env.SHUTDOWN_GRACE_MS / 5)) : 0;
}

/**
 * Tells the parent that started this process over an IPC channel (`npm start`) which port
 * it holds, when that parent asked for it (ANNOUNCE_PORT_OVER_IPC): a channel alone may be
 * someone else's (a test runner's worker has one) and must not get messages it cannot read.
 */
export function announceListening(env: Pick<Env, 'ANNOUNCE_PORT_OVER_IPC'>, port: number): void {
  if (!env.ANNOUNCE_PORT_OVER_IPC || !process.send) return;
  process.send({ type: 'api-listening', port } satisfies ApiListeningMessage);
  // The channel is a courtesy to the parent: it must not hold the process open at shutdown.
  process.channel?.unref();
}

export interface ApiProcess {
  port: number;
  /** What SIGTERM does, without exiting: readiness 503, stop accepting, drain, close the core. Idempotent. */
  stop(): Promise<void>;
}

/** One API process: platform core, app, HTTP listener and graceful shutdown on SIGTERM/SIGINT. */
export async function startApiProcess(env: Env, options: { exitOnSignal?: boolean } = {}): Promise<ApiProcess> {
  const service = env.SERVICE_NAME ?? 'api';
  const log = createLogger({ service, level: env.LOG_LEVEL });
  const metrics = createMetrics(service);
  const core = await createRuntime(env, { service: 'api', log, metrics, relaySweep: true });
  const lifecycle: Lifecycle = { draining: false };
  const consoleDir = builtConsoleDir();
  if (!consoleDir) log.warn('the web console is not built (npm run build builds it): / answers 404');
  const deps = await dependenciesFromCore(env, core, {
    log,
    metrics,
    lifecycle,
    metricsSource: cluster.isWorker ? clusterWorkerMetricsSource(metrics.registry) : undefined,
    consoleDir,
  });
  const app = createApp(deps);
  const { port } = await startWebServer(app, env.PORT);
  log.info({ port, pid: process.pid }, 'API listening');
  // A cluster's workers talk to their primary, which announces the shared port (runClusterPrimary).
  if (!cluster.isWorker) announceListening(env, port);
  for (const caution of apiCautions(env)) log.warn(caution);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      lifecycle.draining = true;
      const propagation = readinessPropagationMs(env);
      await sleep(propagation);
      // Open event streams end now, with a retry hint: their clients resume on another instance.
      core.events.drain();
      await stopWebServer(Math.max(1_000, env.SHUTDOWN_GRACE_MS - propagation));
      await deps.close?.();
      await core.close();
      log.info('API stopped');
    })();
    return stopping;
  };

  const onSignal = (signal: NodeJS.Signals) => {
    log.info({ signal }, 'shutting down');
    stop().then(
      () => options.exitOnSignal !== false && log.flush(() => process.exit(0)),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        log.flush(() => process.exit(1));
      },
    );
  };
  // `on`, not `once`: a second Ctrl-C (the terminal signals the whole cluster too) must not kill mid-drain.
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return { port, stop };
}

async function main(): Promise<void> {
  const env = loadEnv('api');
  if (env.API_PROCESSES > 1 && cluster.isPrimary) {
    const log = createLogger({ service: env.SERVICE_NAME ?? 'api', level: env.LOG_LEVEL });
    log.info({ processes: env.API_PROCESSES }, 'starting the API as a cluster');
    runClusterPrimary({ processes: env.API_PROCESSES, graceMs: env.SHUTDOWN_GRACE_MS, log });
    cluster.once('listening', (_worker, address) => announceListening(env, address.port));
    return;
  }
  await startApiProcess(env);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`api: failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
