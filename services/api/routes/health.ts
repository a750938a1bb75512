import { z } from 'zod';
import { PATHS } from '../../contract';
import type { Lifecycle, MetricsSource, ReadinessChecks } from '../dependencies';
import { endpoint, respond, RETRY_AFTER_HEADER, type Endpoint } from '../endpoints';
import { sendProblem } from '../problem';
import { Problem } from '../schemas';

/** "ok", or why the dependency is not. The checks keep their own deadline (ReadinessChecks), so a probe never hangs. */
async function probe(check: () => Promise<void>): Promise<string> {
  try {
    await check();
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

const Checks = z.object({ postgres: z.string(), redis: z.string() }).meta({ description: '"ok", or why the dependency is not.' });

/** Readiness refused: the problem, and what is not ready (the dependencies' checks, or that the server drains). */
const NotReady = Problem.extend({
  checks: z.union([Checks, z.object({ draining: z.literal(true) }).meta({ description: 'The server is shutting down.' })]),
}).meta({ id: 'NotReady' });

/**
 * Liveness and readiness answer different questions:
 * - /healthz (liveness): is this process able to serve at all (the event loop answers)?
 *   Dependencies do not enter into it, so an outage of PostgreSQL or Redis never gets
 *   healthy pods restarted.
 * - /readyz (readiness): should the load balancer send this pod requests? Not while it
 *   drains, and not while PostgreSQL is unreachable (no request can be answered without
 *   it). Redis being away does not take the pod out: submissions are still accepted into
 *   PostgreSQL and the relay hands them over once Redis is back; the answer says
 *   `degraded` and names Redis.
 */
export function healthEndpoints({ checks, lifecycle, metricsSource }: HealthRoutesOptions): Endpoint[] {
  return [
    endpoint({
      method: 'get',
      path: PATHS.healthz,
      operationId: 'getLiveness',
      summary: 'Liveness: the process serves (no dependency is checked)',
      tag: 'operations',
      access: 'public',
      needsDatabase: false,
      responses: { 200: respond.json('The process is alive.', z.object({ status: z.literal('ok') })) },
      handle(_request, _req, res) {
        res.json({ status: 'ok' });
      },
    }),
    endpoint({
      method: 'get',
      path: PATHS.readyz,
      operationId: 'getReadiness',
      summary: 'Readiness: not draining and PostgreSQL reachable; Redis away means degraded, still ready',
      tag: 'operations',
      access: 'public',
      needsDatabase: false,
      responses: {
        200: respond.json('Ready to take requests.', z.object({ status: z.enum(['ready', 'degraded']), checks: Checks })),
        503: respond.problem('Not ready (draining, or PostgreSQL unreachable); `checks` says which, and Retry-After is sent while PostgreSQL is away.', RETRY_AFTER_HEADER, NotReady),
      },
      async handle(_request, req, res) {
        if (lifecycle.draining) {
          sendProblem(req, res, 503, 'the server is draining', { checks: { draining: true } });
          return;
        }
        const [postgres, redis] = await Promise.all([probe(() => checks.postgres()), probe(() => checks.redis())]);
        const results = { postgres, redis };
        if (postgres !== 'ok') {
          res.setHeader('Retry-After', '5');
          const failing = Object.entries(results).filter(([, result]) => result !== 'ok');
          sendProblem(req, res, 503, `unavailable: ${failing.map(([name, result]) => `${name} (${result})`).join(', ')}`, { checks: results });
          return;
        }
        res.json({ status: redis === 'ok' ? 'ready' : 'degraded', checks: results });
      },
    }),
    endpoint({
      method: 'get',
      path: PATHS.metrics,
      operationId: 'getMetrics',
      summary: 'Prometheus metrics',
      tag: 'operations',
      access: 'public',
      needsDatabase: false,
      responses: { 200: { description: 'Text exposition format.', content: { 'text/plain': { schema: z.string() } } } },
      async handle(_request, _req, res) {
        const { contentType, body } = await metricsSource();
        res.setHeader('Cache-Control', 'no-store');
        res.type(contentType).send(body);
      },
    }),
  ];
}
