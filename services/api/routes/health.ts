import { Router } from 'express';
import { PATHS } from '../../contract';
import type { Lifecycle, MetricsSource, ReadinessChecks } from '../dependencies';
import { withTimeout } from '../../core/timeout';
import { sendProblem } from '../problem';

/** A dependency that has not answered by then counts as down: a probe must never hang. */
const CHECK_TIMEOUT_MS = 2_000;

async function probe(check: () => Promise<void>): Promise<string> {
  try {
    await withTimeout(check(), CHECK_TIMEOUT_MS, `no answer within ${CHECK_TIMEOUT_MS} ms`);
    return 'ok';
  } catch (error) {
    return error instanceof Error ? error.message || error.name : String(error);
  }
}

export interface HealthRoutesOptions {
  checks: ReadinessChecks;
  lifecycle: Lifecycle;
  metricsSource: MetricsSource;
}

export function healthRoutes({ checks, lifecycle, metricsSource }: HealthRoutesOptions): Router {
  const router = Router();

  // Liveness says only that the event loop answers; dependencies going away must not restart the pod.
  router.get(PATHS.healthz, (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get(PATHS.readyz, async (req, res) => {
    if (lifecycle.draining) {
      sendProblem(req, res, 503, 'the server is draining', { checks: { draining: true } });
      return;
    }
    const [postgres, redis] = await Promise.all([probe(() => checks.postgres()), probe(() => checks.redis())]);
    const results = { postgres, redis };
    const failing = Object.entries(results).filter(([, result]) => result !== 'ok');
    if (failing.length > 0) {
      sendProblem(req, res, 503, `unavailable: ${failing.map(([name, result]) => `${name} (${result})`).join(', ')}`, { checks: results });
      return;
    }
    res.json({ status: 'ready', checks: results });
  });

  router.get(PATHS.metrics, async (_req, res) => {
    const { contentType, body } = await metricsSource();
    res.setHeader('Cache-Control', 'no-store');
    res.type(contentType).send(body);
  });

  return router;
}
