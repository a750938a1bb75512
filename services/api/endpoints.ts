import { OpenAPIRegistry, OpenApiGeneratorV31, type ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { Router, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { IN_CLUSTER_PATHS, isPublicPath, MAX_JSON_DEPTH, PROBLEM_CONTENT_TYPE, PUBLIC_ROUTES, REQUEST_ID_HEADER, type PublicRoute } from '../contract';
import { NotFoundError, ValidationError } from '../core/errors';
import { findUnacceptableInput } from '../core/json';
import type { RefreshCookie } from './cookies';
import { MethodNotAllowedError } from './errors';
import { LARGE_BODIES_AT_ONCE_PER_OWNER, LARGE_BODY_BYTES, REFUSAL, SLOW_SMALL_BODIES_PER_OWNER } from './middleware/json-body';
import { Problem } from './schemas';

/**
 * Every HTTP operation of the API is declared once, here, with the zod schemas of its
 * request and responses: the Express router validates requests with those schemas and the
 * OpenAPI document is generated from the same declarations, so the two cannot drift.
 */

/** Who may call an operation: anyone, any signed-in user, or admins only. */
export type Access = 'public' | 'user' | 'admin';

type Method = 'get' | 'post' | 'delete';
/** An OpenAPI security requirement: scheme names (bearerAuth, refreshCookie); `{}` admits a caller without any. */
export type SecurityRequirement = Partial<Record<'bearerAuth' | 'refreshCookie', string[]>>;
type Schema = z.ZodType | undefined;
type Parsed<S extends Schema> = S extends z.ZodType ? z.output<S> : undefined;

export interface EndpointRequest<P extends Schema, Q extends Schema, B extends Schema, H extends Schema> {
  params: Parsed<P>;
  query: Parsed<Q>;
  body: Parsed<B>;
  headers: Parsed<H>;
}

export interface Endpoint<P extends Schema = Schema, Q extends Schema = Schema, B extends Schema = Schema, H extends Schema = Schema> {
  method: Method;
  /** Express syntax (`/v1/jobs/:id`); the document shows `{id}`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: 'auth' | 'files' | 'jobs' | 'admin' | 'operations';
  /** What the path's id names, for the 404 of a malformed one ("no such job"). Default: the tag, singular. */
  resource?: string;
  access: Access;
  request?: {
    /** Path parameters; a value that fails its schema names nothing, so the answer is 404. */
    params?: P;
    query?: Q;
    /** A JSON body (application/json), parsed and validated before the handler runs. */
    body?: B;
    headers?: H;
    /** A body the handler reads itself (uploads): documented, not parsed. */
    rawBody?: { description: string; content: Record<string, { schema: z.ZodType }> };
  };
  responses: Record<number, ResponseConfig>;
  /**
   * False for an operation that answers without PostgreSQL (probes, metrics, the job-type
   * catalog): it is not refused while PostgreSQL is away. Default true.
   */
  needsDatabase?: boolean;
  /**
   * The credentials the document says the operation takes, where its access level does not
   * say it: refresh needs the refresh cookie, which its handler reads (no guard does).
   * Default: none for public operations, the bearer token for the others.
   */
  security?: SecurityRequirement[];
  /** Runs after authentication and before the body is read (rate limits). */
  before?: RequestHandler[];
  handle(request: EndpointRequest<P, Q, B, H>, req: Request, res: Response): void | Promise<void>;
}

/** Declares an endpoint with its types inferred from its schemas. */
export function endpoint<P extends Schema = undefined, Q extends Schema = undefined, B extends Schema = undefined, H extends Schema = undefined>(
  definition: Endpoint<P, Q, B, H>,
): Endpoint {
  return definition as unknown as Endpoint;
}

/** Response helpers: the shapes every operation's document repeats. */
export const respond = {
  json(description: string, schema: z.ZodType, headers?: ResponseConfig['headers']): ResponseConfig {
    return { description, headers, content: { 'application/json': { schema } } };
  },
  /** A problem document; `schema` when the problem carries extension members of its own (Problem extended). */
  problem(description: string, headers?: ResponseConfig['headers'], schema: z.ZodType = Problem): ResponseConfig {
    return { description, headers, content: { [PROBLEM_CONTENT_TYPE]: { schema } } };
  },
  /** A 429, with the headers every 429 is sent with. */
  tooManyRequests(description: string): ResponseConfig {
    return respond.problem(description, RATE_LIMITED_HEADERS);
  },
  empty(description: string, headers?: ResponseConfig['headers']): ResponseConfig {
    return { description, headers };
  },
};

export const LOCATION_HEADER = { Location: { description: 'Where the resource can be read.', schema: { type: 'string' as const } } };
export const RETRY_AFTER_HEADER = { 'Retry-After': { description: 'Seconds to wait before trying again.', schema: { type: 'integer' as const } } };
/** What every 429 is sent with (the problem handler, after draft-ietf-httpapi-ratelimit-headers), so each 429 declares all of it. */
export const RATE_LIMITED_HEADERS = {
  ...RETRY_AFTER_HEADER,
  'RateLimit-Limit': { description: 'Requests the window allows; absent when the refusal is a cap on what is held at once (streams, transfers).', schema: { type: 'integer' as const } },
  'RateLimit-Remaining': { description: 'Requests left in the window: 0.', schema: { type: 'integer' as const } },
  'RateLimit-Reset': { description: 'Seconds until more are allowed (as Retry-After).', schema: { type: 'integer' as const } },
};

/** A path id: a malformed one names nothing, so it is a 404 like any missing resource. */
export const IdParams = z.object({ id: z.uuid().meta({ description: 'The resource\'s id.' }) });

export interface EndpointGuards {
  /** Verifies the bearer token and sets req.user. */
  authenticated: RequestHandler;
  /** Refuses callers without the admin role (after authenticated). */
  admin: RequestHandler;
  /** Reads a JSON body (415/413/400 on a wrong type, size or syntax). */
  json: RequestHandler;
  /** Refuses at once (503) while PostgreSQL is known to be away; first, so a refusal costs nothing else. */
  database: RequestHandler;
}

/** `idempotency-key` → `Idempotency-Key`: how a header is named back to the client. */
function headerName(lowerCase: string): string {
  return lowerCase.replace(/(^|-)([a-z])/g, (_match, dash: string, letter: string) => dash + letter.toUpperCase());
}

function issuesOf(error: z.ZodError, part: 'query' | 'body' | 'headers') {
  return error.issues.map((issue) => {
    const path = issue.path.map(String);
    const field = part === 'headers' ? headerName(path[0] ?? '') : [part, ...path].join('.');
    return { field, message: issue.message };
  });
}

function parse<S extends Schema>(schema: S, value: unknown, part: 'query' | 'body' | 'headers'): Parsed<S> {
  if (!schema) return undefined as Parsed<S>;
  // Query values reach SQL as text, which cannot hold a NUL: refused here, naming the parameter,
  // as JSON bodies are (jsonBody), rather than failing in PostgreSQL as a 500.
  const unacceptable = part === 'query' ? findUnacceptableInput(value, MAX_JSON_DEPTH, ['query']) : undefined;
  if (unacceptable) throw new ValidationError(`the query ${REFUSAL[unacceptable.reason]}`, [{ field: unacceptable.path, message: REFUSAL[unacceptable.reason] }]);
  const result = schema.safeParse(value);
  if (!result.success) throw new ValidationError(`invalid ${part === 'headers' ? 'headers' : part}`, issuesOf(result.error, part));
  return result.data as Parsed<S>;
}

/** Express route handler for one endpoint: validate each part of the request, then hand the parsed parts over. */
function handlerOf(definition: Endpoint): RequestHandler {
  const { request = {} } = definition;
  return async (req, res) => {
    let params: unknown;
    if (request.params) {
      const result = request.params.safeParse(req.params);
      if (!result.success) throw new NotFoundError(`no such ${definition.resource ?? definition.tag.replace(/s$/, '')}`);
      params = result.data;
    }
    const parsed = {
      params,
      query: parse(request.query, req.query, 'query'),
      body: parse(request.body, req.body, 'body'),
      headers: parse(request.headers, req.headers, 'headers'),
    };
    await definition.handle(parsed as EndpointRequest<Schema, Schema, Schema, Schema>, req, res);
  };
}

/** The middleware an endpoint's access level needs, in order. */
function accessGuards(access: Access, guards: EndpointGuards): RequestHandler[] {
  if (access === 'public') return [];
  return access === 'admin' ? [guards.authenticated, guards.admin] : [guards.authenticated];
}

/**
 * The declared paths an ingress built from the contract's PUBLIC_ROUTES would get wrong:
 * an operation it would not route (unreachable from the internet although not one of the
 * in-cluster paths), or an in-cluster path (probe, metrics) it would expose. Empty when the
 * API and the ingress agree.
 */
export function exposureMismatches(paths: readonly string[], routes: readonly PublicRoute[] = PUBLIC_ROUTES): string[] {
  return paths.flatMap((path) => {
    const inCluster = IN_CLUSTER_PATHS.includes(path);
    const routed = isPublicPath(path, routes);
    if (inCluster && routed) return [`${path} is in-cluster only, yet PUBLIC_ROUTES route it from the internet`];
    if (!inCluster && !routed) return [`${path} is neither under PUBLIC_ROUTES nor an in-cluster path: the ingress would never route it`];
    return [];
  });
}

/** An Express router serving the endpoints, in the order given (put the hot path first). */
export function routerFor(endpoints: readonly Endpoint[], guards: EndpointGuards): Router {
  const router = Router();
  for (const definition of endpoints) {
    const chain = [
      ...(definition.needsDatabase === false ? [] : [guards.database]),
      ...accessGuards(definition.access, guards),
      ...(definition.before ?? []),
      ...(definition.request?.body ? [guards.json] : []),
    ];
    router[definition.method](definition.path, ...chain, handlerOf(definition));
  }
  return router;
}

/**
 * After the endpoints' router: a declared path asked with a method it does not take
 * (PUT /v1/jobs) is answered 405 with the Allow header RFC 9110 requires, rather than a 404
 * saying nothing is there. HEAD is allowed wherever GET is; OPTIONS stays Express's own answer.
 * A path two declarations match (/v1/jobs/events, /v1/jobs/:id) takes the first, as routing does.
 */
export function methodNotAllowedRouter(endpoints: readonly Endpoint[]): Router {
  const allowed = new Map<string, Set<string>>();
  for (const definition of endpoints) {
    const methods = allowed.get(definition.path) ?? new Set<string>();
    methods.add(definition.method.toUpperCase());
    if (definition.method === 'get') methods.add('HEAD');
    allowed.set(definition.path, methods);
  }
  const router = Router();
  for (const [path, methods] of allowed) {
    const allow = [...methods].sort().join(', ');
    router.all(path, (req, _res, next) => {
      if (req.method === 'OPTIONS') {
        next();
        return;
      }
      throw new MethodNotAllowedError(`${req.method} is not a method of ${req.path}; it takes ${allow}`, allow);
    });
  }
  return router;
}

const toOpenApiPath = (path: string) => path.replace(/:([A-Za-z]+)/g, '{$1}');

/** authenticate's challenge (RFC 6750), sent with each of its 401s. */
const BEARER_CHALLENGE_HEADER = {
  'WWW-Authenticate': { description: '`Bearer` when no token was sent; `Bearer error="invalid_token"` when it was refused.', schema: { type: 'string' as const } },
};

/** The standard answers of an access level, so no operation forgets them. */
function accessResponses(access: Access): Record<number, ResponseConfig> {
  if (access === 'public') return {};
  // No 429 here: an operation a limit guards declares its own (most are never limited).
  const responses: Record<number, ResponseConfig> = {
    401: respond.problem('Missing, invalid or expired access token.', BEARER_CHALLENGE_HEADER),
  };
  if (access === 'admin') responses[403] = respond.problem('Not an admin.');
  return responses;
}

/** The 503 of an operation that needs PostgreSQL; one that consults no dependency is never refused for one (it declares its own 503, if any). */
function dependencyResponses(definition: Endpoint): Record<number, ResponseConfig> {
  if (definition.needsDatabase === false) return {};
  return { 503: respond.problem('A dependency is unavailable for now; see Retry-After.', RETRY_AFTER_HEADER) };
}

const REQUEST_ID_RESPONSE_HEADER = {
  [headerName(REQUEST_ID_HEADER)]: {
    description: 'Correlation id of the request (the caller\'s when well-formed).',
    schema: { type: 'string' as const },
  },
};

export interface DocumentInfo {
  title: string;
  version: string;
  description: string;
  serverUrl?: string;
  /** The refresh cookie this API sets (its name follows COOKIE_SECURE). */
  refreshCookie: Pick<RefreshCookie, 'name' | 'path'>;
  /**
   * Named schemas no request or response body carries, which operations name in their prose
   * (what each event of an event stream holds): components, so a client can generate a type
   * from each. Each is named by its `.meta({ id })`.
   */
  schemas?: z.ZodType[];
}

/**
 * What jsonBody refuses of any JSON body before its schema is applied, which no schema of
 * the document can say: a client generated from it learns here why a body its types accept
 * is answered 400.
 */
const JSON_BODY_DESCRIPTION = `JSON (application/json, or a +json type), refused with 413 when larger than JSON_BODY_LIMIT_BYTES and with 400, naming the field, when it ${[
  REFUSAL['too deep'],
  REFUSAL['too many keys'],
  REFUSAL['NUL character'],
  REFUSAL['unpaired surrogate'],
  REFUSAL['__proto__ key'],
  REFUSAL['number of too many digits'],
].join('; or ')}.`;

/** What any route taking a JSON body may answer about a large one (jsonBody). */
function largeBodyResponses(): Record<number, ResponseConfig> {
  return {
    408: respond.problem(`A body of ${LARGE_BODY_BYTES} bytes or more did not arrive within LARGE_BODY_TIMEOUT_SECONDS of being let in.`),
    429: respond.tooManyRequests(
      `The caller has ${LARGE_BODIES_AT_ONCE_PER_OWNER} bodies of ${LARGE_BODY_BYTES} bytes or more waiting or being read, or ${SLOW_SMALL_BODIES_PER_OWNER} smaller ones arriving for over a second, on this server process; see Retry-After.`,
    ),
    503: respond.problem('A dependency is unavailable for now, or the server holds as many large bodies as it reads at once; see Retry-After.', RETRY_AFTER_HEADER),
  };
}

/** The OpenAPI 3.1 document of the endpoints. */
export function openApiDocument(endpoints: readonly Endpoint[], info: DocumentInfo): Record<string, unknown> {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearerAuth', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
  registry.registerComponent('securitySchemes', 'refreshCookie', {
    type: 'apiKey',
    in: 'cookie',
    name: info.refreshCookie.name,
    description: `The refresh token, set HttpOnly by login and refresh (Path=${info.refreshCookie.path}); a browser sends it by itself.`,
  });
  for (const definition of endpoints) {
    const { request = {} } = definition;
    const responses: Record<number | 'default', ResponseConfig> = {
      ...accessResponses(definition.access),
      ...dependencyResponses(definition),
      ...(request.body ? largeBodyResponses() : {}),
      ...definition.responses,
      // Whatever else is answered (an unexpected 500, a 405 for another method, a 431 or 408 Node refuses) is a problem document too.
      default: respond.problem('Any other error, as a problem document: an unexpected one is 500 and says only its requestId, under which it is logged.'),
    };
    for (const response of Object.values(responses)) response.headers = { ...REQUEST_ID_RESPONSE_HEADER, ...(response.headers as object | undefined) };
    const body = request.body
      ? { required: true, description: JSON_BODY_DESCRIPTION, content: { 'application/json': { schema: request.body } } }
      : request.rawBody
        ? { required: true, description: request.rawBody.description, content: request.rawBody.content }
        : undefined;
    registry.registerPath({
      method: definition.method,
      path: toOpenApiPath(definition.path),
      operationId: definition.operationId,
      summary: definition.summary,
      description: definition.description,
      tags: [definition.tag],
      security: definition.security ?? (definition.access === 'public' ? [] : [{ bearerAuth: [] }]),
      request: {
        params: request.params as z.ZodObject | undefined,
        query: request.query as z.ZodObject | undefined,
        headers: request.headers as z.ZodObject | undefined,
        body,
      },
      responses,
    });
  }
  const named = (info.schemas ?? []).map((schema) => ({ type: 'schema' as const, schema }));
  const generator = new OpenApiGeneratorV31([...registry.definitions, ...named]);
  return generator.generateDocument({
    openapi: '3.1.0',
    info: { title: info.title, version: info.version, description: info.description, license: { name: 'Apache-2.0', identifier: 'Apache-2.0' } },
    servers: [{ url: info.serverUrl ?? '/' }],
    tags: [
      { name: 'auth', description: 'Accounts and access tokens.' },
      { name: 'files', description: 'Uploads the jobs work on, and the files jobs produce.' },
      { name: 'jobs', description: 'Submit jobs, follow them, read their results.' },
      { name: 'admin', description: 'Queue and dead-letter operations; admins only.' },
      { name: 'operations', description: 'Probes and metrics for the platform.' },
    ],
  }) as unknown as Record<string, unknown>;
}
