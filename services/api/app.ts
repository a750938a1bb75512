import express, { type Express } from 'express';
import helmet from 'helmet';
import type { AppDependencies, Lifecycle, MetricsSource } from './dependencies';
import { CONSOLE_PAGES, PATHS } from '../contract';
import { exposureMismatches, methodNotAllowedRouter, openApiDocument, routerFor, type Endpoint } from './endpoints';
import { describeJobTypes } from './job-type-catalog';
import { authenticate, requireRole } from './middleware/authenticate';
import { httpMetrics } from './middleware/http-metrics';
import { jobDataReadLimit } from './middleware/job-data-reads';
import { submitBytesLimit } from './middleware/submit-bytes';
import { jsonBody } from './middleware/json-body';
import { refreshCookieFor, type RefreshCookie } from './cookies';
import { AccountLockout } from './middleware/account-lockout';
import { WritesAtOnce } from './middleware/writes-at-once';
import { clientAddressKey } from './middleware/client-address';
import { createLimiter, rateLimit, tooManyRequests } from './middleware/rate-limit';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { provideRequestLogger, requestContext } from './middleware/request-context';
import { createProblemHandler, notFoundHandler } from './problem';
import { boundUnreadBody } from './refused-body';
import type { Logger } from '../core/logger';
import { adminEndpoints } from './routes/admin';
import { authEndpoints } from './routes/auth';
import { consoleRoutes } from './routes/console';
import { fileEndpoints } from './routes/files';
import { healthEndpoints } from './routes/health';
import { jobTypeEndpoints } from './routes/job-types';
import { EventStreams } from './routes/job-events';
import { jobEndpoints } from './routes/jobs';
import { usageEndpoints } from './routes/usage';
import { openApiRoutes } from './routes/openapi';
import { JobEventSchema } from './schemas';

/** The API's version as the OpenAPI document states it. */
const API_VERSION = '1.0.0';

/**
 * Every operation of the API, in the order Express tries them (the hot path, job
 * submission, first). Routes and the OpenAPI document are both made from this list.
 */
function apiEndpoints(deps: AppDependencies, lifecycle: Lifecycle, metricsSource: MetricsSource): Endpoint[] {
  const { env } = deps;
  const prefix = env.QUEUE_PREFIX;
  const perUser = (req: { user?: { userId: string } }) => req.user?.userId ?? 'anonymous';
  const credentialLimit = rateLimit({ redis: deps.redis, keyPrefix: `${prefix}:rl:auth`, points: env.AUTH_RATE_LIMIT_PER_MINUTE, durationSeconds: 60 }, clientAddressKey);
  const refreshLimit = rateLimit({ redis: deps.redis, keyPrefix: `${prefix}:rl:refresh`, points: env.REFRESH_RATE_LIMIT_PER_MINUTE, durationSeconds: 60 }, clientAddressKey);
  const submitLimit = rateLimit({ redis: deps.redis, keyPrefix: `${prefix}:rl:submit`, points: env.SUBMIT_RATE_LIMIT_PER_SECOND, durationSeconds: 1 }, perUser);
  const submitBytes = submitBytesLimit(
    { redis: deps.redis, keyPrefix: `${prefix}:rl:submit-bytes`, bytesPerSecond: env.SUBMIT_BYTES_PER_SECOND, jsonLimitBytes: env.JSON_BODY_LIMIT_BYTES },
    perUser,
  );
  const uploadLimit = rateLimit({ redis: deps.redis, keyPrefix: `${prefix}:rl:upload`, points: env.UPLOAD_RATE_LIMIT_PER_MINUTE, durationSeconds: 60 }, perUser);
  const streamLimit = rateLimit({ redis: deps.redis, keyPrefix: `${prefix}:rl:stream`, points: env.STREAM_RATE_LIMIT_PER_MINUTE, durationSeconds: 60 }, perUser);
  const jobDataLimit = jobDataReadLimit({ redis: deps.redis, keyPrefix: `${prefix}:rl:job-data`, bytesPerSecond: env.JOB_DATA_READ_BYTES_PER_SECOND }, perUser);
  const resetLimiter = createLimiter({ redis: deps.redis, keyPrefix: `${prefix}:rl:reset`, points: env.PASSWORD_RESET_PER_HOUR, durationSeconds: 3_600 });
  const resetLimit = async (account: string, requestLog: Logger) => {
    try {
      await resetLimiter.consume(account);
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) throw tooManyRequests(rejection, env.PASSWORD_RESET_PER_HOUR, 'too many password-reset requests for this address; see Retry-After');
      requestLog.warn({ err: rejection }, 'password-reset limiter unavailable; request let through');
    }
  };
  // The reset route's budget of mails per address, for the mails an attempt to register a taken address sends its owner.
  const noticeLimiter = createLimiter({ redis: deps.redis, keyPrefix: `${prefix}:rl:registered-notice`, points: env.PASSWORD_RESET_PER_HOUR, durationSeconds: 3_600 });
  const registrationNoticeLimit = async (account: string, requestLog: Logger) => {
    try {
      await noticeLimiter.consume(account);
      return true;
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) return false;
      requestLog.warn({ err: rejection }, 'registration notice limiter unavailable; mail sent');
      return true;
    }
  };
  const lockout = new AccountLockout({
    redis: deps.redis,
    prefix,
    failuresBeforeLockout: env.LOGIN_FAILURES_BEFORE_LOCKOUT,
    accountFailuresBeforeLockout: env.LOGIN_FAILURES_BEFORE_ACCOUNT_LOCKOUT,
    lockoutSeconds: env.LOCKOUT_SECONDS,
    security: deps.security,
  });
  return [
    ...jobEndpoints({
      jobs: deps.jobs,
      streams: new EventStreams({ hub: deps.events, jobs: deps.jobs, lifecycle, limits: env, auth: deps.auth }),
      submitLimit,
      submitBytes,
      streamLimit,
      jobDataLimit,
      writes: new WritesAtOnce(env.JOB_WRITES_AT_ONCE_PER_USER),
      quotas: deps.quotas,
      removal: deps.removal,
    }),
    ...fileEndpoints({ files: deps.files, uploadLimitBytes: env.UPLOAD_LIMIT_BYTES, uploadLimit, quotas: deps.quotas }),
    ...usageEndpoints({ quotas: deps.quotas }),
    ...jobTypeEndpoints(describeJobTypes()),
    ...authEndpoints({ auth: deps.auth, security: deps.security, credentialLimit, refreshLimit, resetLimit, registrationNoticeLimit, lockout, cookieSecure: env.COOKIE_SECURE }),
    ...adminEndpoints({ admin: deps.admin }),
    ...healthEndpoints({ checks: deps.checks, lifecycle, metricsSource }),
  ];
}

/** The OpenAPI document of the API (served at /openapi.json, linted by the tests). */
function apiDocument(endpoints: readonly Endpoint[], refreshCookie: RefreshCookie): Record<string, unknown> {
  return openApiDocument(endpoints, {
    refreshCookie,
    title: 'Platform Kit API',
    version: API_VERSION,
    description: 'Submit jobs, upload files, and poll or stream job status. Errors are application/problem+json (RFC 9457) and carry the request id.',
    schemas: [JobEventSchema],
  });
}

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
  // X-Forwarded-For is believed only from the proxies TRUST_PROXY names (the ALB's hop in the cloud),
  // never from any private address: an in-cluster client could then forge its own address.
  app.set('trust proxy', env.TRUST_PROXY);

  provideRequestLogger(app, log);
  app.use((req, res, next) => {
    boundUnreadBody(req, res);
    next();
  });
  app.use(requestContext);
  app.use(httpMetrics(metrics));
  app.use(helmet());
  app.use((_req, res, next) => {
    // Draining: tell keep-alive clients to reconnect elsewhere after this response.
    if (lifecycle.draining) res.setHeader('Connection', 'close');
    next();
  });

  const endpoints = apiEndpoints(deps, lifecycle, metricsSource);
  // The ingress routes the contract's PUBLIC_ROUTES: a declaration it would get wrong is a bug to stop at, not to ship.
  const mismatches = exposureMismatches([...endpoints.map((definition) => definition.path), PATHS.openapi, PATHS.docs, ...Object.values(CONSOLE_PAGES)]);
  if (mismatches.length > 0) throw new Error(`the API's operations and the contract's PUBLIC_ROUTES disagree: ${mismatches.join('; ')}`);
  const { database } = deps;
  app.use(
    routerFor(endpoints, {
      authenticated: authenticate(deps.auth),
      admin: requireRole('admin'),
      json: jsonBody(env.JSON_BODY_LIMIT_BYTES, { largeBodyTimeoutSeconds: env.LARGE_BODY_TIMEOUT_SECONDS }),
      database: (_req, _res, next) => {
        database?.assertAvailable();
        next();
      },
    }),
  );
  app.use(openApiRoutes(apiDocument(endpoints, refreshCookieFor(env.COOKIE_SECURE))));
  if (deps.consoleDir) app.use(consoleRoutes(deps.consoleDir));
  app.use(methodNotAllowedRouter(endpoints));

  app.use(notFoundHandler);
  app.use(createProblemHandler({ onDatabaseTrouble: (error) => database?.observe(error) }));
  return app;
}
