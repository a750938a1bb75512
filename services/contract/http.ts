/** Ports and paths shared by the servers, the probes, the ServiceMonitors and the NetworkPolicies. */
export const PORTS = {
  api: 8080,
  workerMetrics: 9091,
} as const;

export const PATHS = {
  healthz: '/healthz',
  readyz: '/readyz',
  metrics: '/metrics',
  openapi: '/openapi.json',
  docs: '/docs',
} as const;

export const API_PREFIX = '/v1';

/** Media type of every error body (RFC 9457). */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
export const REQUEST_ID_HEADER = 'x-request-id';
export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';

/**
 * Deepest nesting of arrays and objects a JSON body may have. Deeper documents are refused
 * with 400 before any schema sees them: validators recurse once per level, and no job input
 * needs more.
 */
export const MAX_JSON_DEPTH = 64;

/** How an ingress matches a public route: the path itself, or the path and everything under it. */
export type RouteMatch = 'exact' | 'prefix';

/**
 * What the API serves to the internet, as an ingress routes it: the versioned API, the
 * OpenAPI document, Swagger UI and the console's page. Health and metrics endpoints are
 * not among them: probes and Prometheus reach the pods inside the cluster.
 */
export const PUBLIC_ROUTES: readonly { path: string; match: RouteMatch }[] = [
  { path: API_PREFIX, match: 'prefix' },
  { path: PATHS.openapi, match: 'exact' },
  { path: PATHS.docs, match: 'prefix' },
  { path: '/', match: 'exact' },
];
