import { isRetryable as isPostgresRetryable, isStatementTimeout } from '../core/db/errors';

/** What failed when an attempt failed on the platform's infrastructure: the phrase its audit row names. */
export type Dependency = 'PostgreSQL' | 'Redis' | 'the object store' | 'the mail relay' | 'a connection to a platform service' | typeof MISSING_PROCESSOR;

/** What a job failed on when the worker that took it runs a release without its type's processor (the API's release is newer). */
export const MISSING_PROCESSOR = "the worker's release";

/**
 * Socket errors of Node (errno names in `code`): the connection was refused, reset, timed out
 * or could not be routed or resolved. Processors reach only the platform's own services
 * (PostgreSQL, Redis, the object store, the mail relay), so such an error is theirs.
 */
const SOCKET_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * The error names of the AWS SDK (the S3 error code, or the SDK's own name for a timeout)
 * that mean "slow down" or "try again", as the SDK's own retry classification lists them
 * (@smithy/core's THROTTLING_ERROR_CODES and TRANSIENT_ERROR_CODES).
 */
const OBJECT_STORE_TRANSIENT = new Set([
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'BandwidthLimitExceeded',
  'PriorRequestNotComplete',
]);

/** What ioredis rejects a command with when the connection failed under it (ioredis has no error codes of its own for these). */
const REDIS_CONNECTION_FAILURE = new Set([
  'Command timed out',
  'Connection is closed.',
  "Stream isn't writeable and enableOfflineQueue options is false",
  'Command aborted due to connection close',
]);

/**
 * Replies by which a Redis server refuses work for now: loading its data after a restart, a
 * replica promoted or demoted in a failover, a cluster reconfiguring, a busy script, full
 * memory (with noeviction, as BullMQ needs).
 */
const REDIS_REFUSING = /^(LOADING|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|BUSY|OOM)\b/;

/** nodemailer's codes for a relay that could not be reached or dropped the connection. */
const MAIL_RELAY_CONNECTION = new Set(['ECONNECTION', 'ESOCKET', 'ETIMEDOUT', 'EDNS']);

interface ErrorShape {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  cause?: unknown;
  /** The AWS SDK's response metadata, on service errors and on the network errors it passes on. */
  $metadata?: { httpStatusCode?: unknown };
  /** The AWS SDK's retryable trait. */
  $retryable?: unknown;
  /** nodemailer: the SMTP command that failed ('CONN' while connecting). */
  command?: unknown;
  /** nodemailer: the SMTP reply code. */
  responseCode?: unknown;
}

function objectStoreFailure(error: ErrorShape): boolean {
  const status = error.$metadata?.httpStatusCode;
  if (typeof status === 'number' && (status === 429 || (status >= 500 && status <= 599))) return true;
  if (error.$retryable !== undefined) return true;
  return (typeof error.name === 'string' && OBJECT_STORE_TRANSIENT.has(error.name)) || (typeof error.code === 'string' && SOCKET_ERRORS.has(error.code));
}

function mailRelayFailure(error: ErrorShape): boolean {
  // A 4xx reply is SMTP's "try again later": the relay's or the receiving side's queue is full, greylisting, a local error.
  if (typeof error.responseCode === 'number' && error.responseCode >= 400 && error.responseCode < 500) return true;
  return typeof error.code === 'string' && MAIL_RELAY_CONNECTION.has(error.code);
}

function redisFailure(error: ErrorShape): boolean {
  if (error.name === 'MaxRetriesPerRequestError') return true;
  if (typeof error.message !== 'string') return false;
  if (error.name === 'ReplyError') return REDIS_REFUSING.test(error.message);
  return REDIS_CONNECTION_FAILURE.has(error.message);
}

function classifyOne(error: ErrorShape): Dependency | undefined {
  // An abort is ours (a cancel, a timeout, a shutdown), and the executor has already told which.
  if (error.name === 'AbortError' && error.message !== 'Command aborted due to connection close') return undefined;
  if (error.$metadata !== undefined && typeof error.$metadata === 'object') return objectStoreFailure(error) ? 'the object store' : undefined;
  if (typeof error.command === 'string') return mailRelayFailure(error) ? 'the mail relay' : undefined;
  if (redisFailure(error)) return 'Redis';
  // A bare socket error does not say which service it came from; its message names the address.
  if (typeof error.code === 'string' && SOCKET_ERRORS.has(error.code)) return 'a connection to a platform service';
  // SQLSTATEs of a server that is away or restarting (08, 57P01-57P03, 53300), a deadlock or
  // serialization victim (40P01, 40001), and node-postgres's own connection failures.
  if (isPostgresRetryable(error)) return 'PostgreSQL';
  // A statement timeout (57014): a processor's statements are the platform's own key lookups,
  // bounded pages and quota checks, so one that ran out the pool's statement_timeout waited
  // on a lock or on a server that stalled. A server stopped for longer than that timeout but
  // less than the client's wait for the answer fails the statement this way as it resumes,
  // where a longer stall ends in "Query read timeout": the same outage, so the same verdict.
  if (isStatementTimeout(error)) return 'PostgreSQL';
  return undefined;
}

/**
 * What of the platform's infrastructure an error a processor threw says failed, or undefined
 * when the error is the job's own (or a bug). Such a failure is not the job's doing, so it
 * does not spend the job's attempt (the lifecycle's `defer`). Recognised, from what the
 * libraries throw:
 * - PostgreSQL (pg): connection exceptions (SQLSTATE class 08), the server shutting down,
 *   crashing or starting (57P01-57P03), too many connections (53300), deadlock and
 *   serialization victims, statement timeouts (57014: a lock or a stalled server, see
 *   classifyOne); the pool's "timeout exceeded when trying to connect", "Connection
 *   terminated …" and the other connection failures node-postgres reports without a SQLSTATE.
 * - Redis (ioredis): "Command timed out", "Connection is closed.", MaxRetriesPerRequestError,
 *   and server replies that refuse work for now (LOADING, READONLY, MASTERDOWN, TRYAGAIN,
 *   CLUSTERDOWN, BUSY, OOM).
 * - the object store (@aws-sdk/client-s3): HTTP 5xx and 429 (`$metadata.httpStatusCode`),
 *   errors the SDK marks retryable (`$retryable`), throttling and timeout names (SlowDown,
 *   RequestTimeout, TimeoutError, …), and socket errors it passes on.
 * - the mail relay (nodemailer): connection failures and 4xx replies.
 * - socket errors (ECONNREFUSED, ECONNRESET, ETIMEDOUT, …) from any of them.
 * An error wrapping one of these (`cause`) is classified by what it wraps. A job whose own
 * input provoked one of them on every run (a statement slow for its input) is still
 * dead-lettered, after MAX_DEFERRALS runs.
 */
export function infrastructureFailure(error: unknown): Dependency | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth += 1) {
    const dependency = classifyOne(current as ErrorShape);
    if (dependency) return dependency;
    current = (current as ErrorShape).cause;
  }
  return undefined;
}
