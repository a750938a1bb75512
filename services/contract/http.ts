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

/**
 * How the api's and the worker's `PATHS.healthz` is asked: how often, how long each answer
 * may take, and after how many failures in a row the process is restarted. The startup
 * probe holds until the first answer, the liveness probe from then on. The pods' probes and
 * `npm start`'s supervisor both follow these, so a hung process is treated alike in both.
 */
export const HEALTH_PROBES = {
  startup: { periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 60 },
  liveness: { periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 },
} as const;

/**
 * What an API process tells the parent that started it over an IPC channel (`npm start`'s
 * supervisor) once its listener is bound. Answers on the port prove nothing: another
 * checkout's run may hold it; this message comes only from the parent's own child.
 */
export interface ApiListeningMessage {
  type: 'api-listening';
  port: number;
}

export function isApiListeningMessage(message: unknown): message is ApiListeningMessage {
  const candidate = message as Partial<ApiListeningMessage> | null;
  return typeof candidate === 'object' && candidate !== null && candidate.type === 'api-listening' && Number.isInteger(candidate.port);
}

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

/**
 * Most keys one JSON object of a body may have. A wider object is refused with 400 before
 * any schema sees it: V8 keeps an object of more than about a thousand keys as a hash table,
 * and every pass over one (the checks, the schema, the Idempotency-Key's hash, the text sent
 * to PostgreSQL) costs several times what the same members cost in arrays or smaller objects,
 * all of it on the API's event loop. No job input needs more; a list of any length is an array.
 */
export const MAX_JSON_OBJECT_KEYS = 1_000;

/** How an ingress matches a public route: the path itself, or the path and everything under it. */
export type RouteMatch = 'exact' | 'prefix';
export interface PublicRoute {
  path: string;
  match: RouteMatch;
}

/**
 * The web console's pages (services/console), as the browser's address bar shows them.
 * The API answers each with the console's index.html and the console's router renders
 * the page, so a bookmarked or reloaded address works. `job` takes the job's id.
 * `resetPassword` is where the password-reset mail links, with the token in the URL's
 * fragment (`/reset#token=…`): browsers never send a fragment to a server, so the token
 * stays out of access logs, proxies and Referer headers.
 */
export const CONSOLE_PAGES = {
  jobs: '/',
  job: '/jobs',
  submit: '/submit',
  files: '/files',
  admin: '/admin',
  signIn: '/sign-in',
  register: '/register',
  forgotPassword: '/forgot-password',
  resetPassword: '/reset',
} as const;

/** Where the console's built, content-hashed scripts and styles live. */
export const CONSOLE_ASSETS_PATH = '/assets';

/** What an ingress routes to the console: each page (a job's page is under its prefix) and the assets. */
export const CONSOLE_ROUTES: readonly PublicRoute[] = [
  ...Object.values(CONSOLE_PAGES).map((path): PublicRoute => ({ path, match: path === CONSOLE_PAGES.job ? 'prefix' : 'exact' })),
  { path: CONSOLE_ASSETS_PATH, match: 'prefix' },
];

/**
 * What the API serves to the internet, as an ingress routes it: the versioned API, the
 * OpenAPI document, Swagger UI and the web console. Every operation the API declares is
 * under one of these, except the in-cluster ones below (the API refuses to start
 * otherwise, see services/api/endpoints.ts), and each of these serves something.
 */
export const PUBLIC_ROUTES: readonly PublicRoute[] = [
  { path: API_PREFIX, match: 'prefix' },
  { path: PATHS.openapi, match: 'exact' },
  { path: PATHS.docs, match: 'prefix' },
  ...CONSOLE_ROUTES,
];

/** Paths only the cluster reaches: probes (kubelet, the load balancer's health check) and Prometheus. Never routed from the internet. */
export const IN_CLUSTER_PATHS: readonly string[] = [PATHS.healthz, PATHS.readyz, PATHS.metrics];

/**
 * Whether an ingress built from PUBLIC_ROUTES sends `path` to the API, matched as
 * Kubernetes matches `Exact` and `Prefix` paths (a prefix matches whole path segments:
 * `/v1` matches `/v1` and `/v1/jobs`, not `/v1x`). Route templates (`/v1/jobs/:id`) match
 * like the paths they stand for.
 */
export function isPublicPath(path: string, routes: readonly PublicRoute[] = PUBLIC_ROUTES): boolean {
  return routes.some((route) => (route.match === 'exact' ? path === route.path : path === route.path || path.startsWith(`${route.path.replace(/\/+$/, '')}/`)));
}
