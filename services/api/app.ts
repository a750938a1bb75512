import express, { type Express } from 'express';
import helmet from 'helmet';
import type { AppDependencies, Lifecycle, MetricsSource } from './dependencies';
import { describeJobTypes } from './job-type-catalog';
import { authenticate } from './middleware/authenticate';
import { httpMetrics } from './middleware/http-metrics';
import { jsonBody } from './middleware/json-body';
import { rateLimit } from './middleware/rate-limit';
import { requestContext } from './middleware/request-context';
import { buildOpenApiDocument } from './openapi';
import { notFoundHandler, problemHandler } from './problem';
import { adminRoutes } from './routes/admin';
import { authRoutes } from './routes/auth';
import { fileRoutes } from './routes/files';
import { healthRoutes } from './routes/health';
import { jobTypeRoutes } from './routes/job-types';
import { jobRoutes } from './routes/jobs';
import { openApiRoutes } from './routes/openapi';

/** The API's version as the OpenAPI document states it. */
const API_VERSION = '1.0.0';

/**
 * The Express app. Everything that can be computed once (JSON Schemas, the OpenAPI
 * document, the token key, the limiters) is, here, before the first request.
 */
export function createApp(deps: AppDependencies): Express {
  const { env, log, metrics } = deps;
  const lifecycle: Lifecycle = deps.lifecycle ?? { draining: false };
  const metricsSource: MetricsSource =
    deps.metricsSource ?? (async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }));

  const app = express();
  app.disable('x-powered-by');
  // Clients cache nothing of ours by ETag, and hashing every JSON body is work the submit path does not need.
  app.set('etag', false);
  // Behind the ALB or a local proxy, the client address is in X-Forwarded-For; trust only private hops.
  app.set('trust proxy', 'loopback, linklocal, uniquelocal');

  app.use(requestContext);
  app.use(httpMetrics(metrics));
  app.use(helmet());
  app.use((_req, res, next) => {
    // Draining: tell keep-alive clients to reconnect elsewhere after this response.
    if (lifecycle.draining) res.setHeader('Connection', 'close');
    next();
  });

  const json = jsonBody(env.JSON_BODY_LIMIT_BYTES);
  const authenticated = authenticate(deps.auth);
  const credentialLimit = rateLimit(
    { redis: deps.redis, keyPrefix: `${env.QUEUE_PREFIX}:rl:auth`, points: env.AUTH_RATE_LIMIT_PER_MINUTE, durationSeconds: 60, log },
    (req) => req.ip ?? req.socket.remoteAddress ?? 'unknown',
  );
  const submitLimit = rateLimit(
    { redis: deps.redis, keyPrefix: `${env.QUEUE_PREFIX}:rl:submit`, points: env.SUBMIT_RATE_LIMIT_PER_SECOND, durationSeconds: 1, log },
    (req) => req.user?.userId ?? 'anonymous',
  );

  // Express tries routers in order for every request: the hot path (job submission) goes first.
  app.use(jobRoutes({ jobs: deps.jobs, log, lifecycle, json, authenticated, submitLimit }));
  app.use(fileRoutes({ files: deps.files, uploadLimitBytes: env.UPLOAD_LIMIT_BYTES, authenticated }));
  app.use(jobTypeRoutes(describeJobTypes()));
  app.use(authRoutes({ auth: deps.auth, json, authenticated, credentialLimit }));
  app.use(adminRoutes({ admin: deps.admin, authenticated }));
  app.use(healthRoutes({ checks: deps.checks, lifecycle, metricsSource }));
  app.use(openApiRoutes(buildOpenApiDocument({ version: API_VERSION })));

  app.use(notFoundHandler);
  app.use(problemHandler(log));
  return app;
}
