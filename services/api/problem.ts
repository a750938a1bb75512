import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { PROBLEM_CONTENT_TYPE, REQUEST_ID_HEADER } from '../contract';
import { DatabaseAwayError, isDatabaseUnavailable, isStatementTimeout } from '../core/db/errors';
import { DomainError, NotFoundError, ServiceUnavailableError, ValidationError, type FieldIssue } from '../core/errors';
import { MethodNotAllowedError, TooManyRequestsError } from './errors';
import { settleUnreadBody } from './refused-body';

/** An RFC 9457 problem document, with the request id and, for validation failures, the fields at fault. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  requestId?: string;
  errors?: FieldIssue[];
  [extension: string]: unknown;
}

/** Answers with a problem document; a request body left unread is settled as settleUnreadBody says. */
export function sendProblem(req: Request, res: Response, status: number, detail?: string, extensions: Record<string, unknown> = {}): void {
  const problem: Problem = {
    type: 'about:blank',
    title: STATUS_CODES[status] ?? 'Error',
    status,
    ...(detail !== undefined && { detail }),
    instance: req.originalUrl,
    requestId: req.requestId,
    ...extensions,
  };
  settleUnreadBody(req, res);
  res.status(status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem));
}

/** Errors body-parser raises (http-errors with a `type`); mapped without trusting their messages blindly. */
interface BodyParserError {
  type: string;
  status: number;
  limit?: number;
}

const BODY_PARSER_DETAILS: Record<string, string> = {
  'entity.too.large': 'the request body is larger than the limit',
  'entity.parse.failed': 'the request body is not valid JSON',
  'encoding.unsupported': 'the request body encoding is not supported',
  'charset.unsupported': 'the request body charset is not supported',
  'request.aborted': 'the request was aborted while its body was read',
  'request.size.invalid': 'the request body size does not match Content-Length',
  'stream.encoding.set': 'the request stream could not be read',
  'parameters.too.many': 'the request has too many parameters',
};

function isBodyParserError(error: unknown): error is BodyParserError {
  const candidate = error as Partial<BodyParserError> | null;
  return typeof candidate?.type === 'string' && typeof candidate.status === 'number' && candidate.type in BODY_PARSER_DETAILS;
}

/** The router's error for a path parameter decodeURIComponent refuses (`/v1/jobs/%ZZ`): a URIError it marks 400. */
function isUndecodablePathParameter(error: unknown): boolean {
  return error instanceof URIError && (error as URIError & { status?: number }).status === 400;
}

/** How long a client is asked to wait while PostgreSQL is away: a restart or a failover takes seconds. */
const DATABASE_RETRY_AFTER_SECONDS = 5;

export interface ProblemHandlerOptions {
  /** Told of every error that says PostgreSQL is away or did not answer (DatabaseAvailability.observe). */
  onDatabaseTrouble?: (error: unknown) => void;
}

/**
 * The one place errors turn into responses: operational errors by their status, anything
 * else is a 500 logged under the request's id.
 */
export function createProblemHandler(options: ProblemHandlerOptions = {}): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) {
      // The response is streaming already; all that is left is to cut it short.
      req.log.warn({ err: error }, 'error after the response started');
      next(error);
      return;
    }
    // Away (the pool reconnects by itself once it is back) or too slow to run the statement in
    // time: either way nothing was written, and the client only has to come back.
    const databaseTrouble = isDatabaseUnavailable(error) ? 'is unavailable' : isStatementTimeout(error) ? 'did not answer in time' : undefined;
    if (databaseTrouble) {
      options.onDatabaseTrouble?.(error);
      res.setHeader('Retry-After', String(DATABASE_RETRY_AFTER_SECONDS));
      if (error instanceof DatabaseAwayError) {
        // Refused without asking PostgreSQL: the outage was logged once when it began, not per request.
        sendProblem(req, res, 503, 'the database is unavailable (a request found it away moments ago); try again shortly');
        return;
      }
      req.log.warn({ err: error, method: req.method, path: req.path }, `PostgreSQL ${databaseTrouble}`);
      sendProblem(req, res, 503, `the database ${databaseTrouble}; try again shortly`);
      return;
    }
    if (error instanceof DomainError) {
      if (error instanceof TooManyRequestsError || error instanceof ServiceUnavailableError) res.setHeader('Retry-After', String(error.retryAfterSeconds));
      if (error instanceof TooManyRequestsError) {
        // draft-ietf-httpapi-ratelimit-headers: the budget, what is left of it (nothing), and when it refills.
        if (error.limit !== undefined) res.setHeader('RateLimit-Limit', String(error.limit));
        res.setHeader('RateLimit-Remaining', '0');
        res.setHeader('RateLimit-Reset', String(error.retryAfterSeconds));
      }
      if (error instanceof MethodNotAllowedError) res.setHeader('Allow', error.allow);
      const extensions = error instanceof ValidationError && error.issues.length > 0 ? { errors: error.issues } : {};
      sendProblem(req, res, error.status, error.message, extensions);
      return;
    }
    if (isBodyParserError(error)) {
      sendProblem(req, res, error.status, BODY_PARSER_DETAILS[error.type], error.limit !== undefined ? { limitBytes: error.limit } : {});
      return;
    }
    if (isUndecodablePathParameter(error)) {
      // Like any malformed id, a path parameter that is not even valid percent-encoding names nothing.
      sendProblem(req, res, 404, `nothing at ${req.path}: the path is not valid percent-encoding`);
      return;
    }
    // The path, not the URL: a careless client's query string may carry a token or an address.
    req.log.error({ err: error, method: req.method, path: req.path }, 'unhandled error');
    sendProblem(req, res, 500, 'an unexpected error occurred');
  };
}

/** What Node's HTTP parser refused (codes of llhttp and of the server's timeouts), as the status that says it. */
const CLIENT_ERRORS: Record<string, { status: number; detail: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, detail: 'the request headers are larger than the server accepts' },
  HPE_CHUNK_EXTENSIONS_OVERFLOW: { status: 413, detail: 'the chunk extensions of the request body are larger than the server accepts' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, detail: 'the request did not arrive in time' },
};

/**
 * The server's `clientError` listener: a request Node refuses before the app sees it (headers
 * over the size limit, a line that is not HTTP) is answered with a problem document too, where
 * Node would send a status line without a body. The connection is closed after it.
 */
export function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  // Node's own rule (socketOnError): answer only a socket that can still take it and is not
  // midway through a response (a keep-alive socket between requests has none in flight).
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent: boolean } | null })._httpMessage;
  if (error.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy(error);
    return;
  }
  const { status, detail } = CLIENT_ERRORS[error.code ?? ''] ?? { status: 400, detail: 'the request is not valid HTTP/1.1' };
  const requestId = randomUUID();
  const body = JSON.stringify({ type: 'about:blank', title: STATUS_CODES[status] ?? 'Error', status, detail, requestId });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `${REQUEST_ID_HEADER}: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export const notFoundHandler: RequestHandler = (req) => {
  throw new NotFoundError(`no route for ${req.method} ${req.path}`);
};
