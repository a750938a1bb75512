import type { RequestHandler } from 'express';
import type { Metrics } from '../../core/metrics';

/** Label for requests no route matched, so probing random paths cannot explode the label set. */
const UNMATCHED_ROUTE = '(unmatched)';

/** Observes every request's duration by method, route template (`/v1/jobs/:id`, not the raw path) and status. */
export function httpMetrics(metrics: Pick<Metrics, 'httpRequestDuration'>): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      // Routes are declared with their full path (no mount prefixes), so the template is complete here.
      const route = req.route ? String(req.route.path) : UNMATCHED_ROUTE;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.httpRequestDuration.observe({ method: req.method, route, status: String(res.statusCode) }, seconds);
    });
    next();
  };
}
