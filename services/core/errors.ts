/**
 * Operational errors of the domain. The API maps each to a problem+json status; anything
 * else is a bug, logged with the request id and answered 500 without details.
 */
export abstract class DomainError extends Error {
  abstract readonly status: number;
  constructor(message: string) {
    super(message);
    // Keeps instanceof-free checks (error.name) working across process and realm boundaries.
    this.name = this.constructor.name;
  }
}

export interface FieldIssue {
  /** Dotted path of the offending field, e.g. `input.fileId`. */
  field: string;
  message: string;
}

export class ValidationError extends DomainError {
  readonly status = 400;
  constructor(
    message: string,
    readonly issues: FieldIssue[] = [],
  ) {
    super(message);
  }
}

export class NotFoundError extends DomainError {
  readonly status = 404;
}

export class ConflictError extends DomainError {
  readonly status = 409;
}

/** A write made on the condition that its row was still as the caller read it found the row moved since: nothing was written. */
export class ChangedSinceReadError extends ConflictError {}

export class ForbiddenError extends DomainError {
  readonly status = 403;
}

export class UnauthorizedError extends DomainError {
  readonly status = 401;
}

/** Over a per-user quota (stored bytes, files, queued jobs): nothing was stored. */
export class QuotaExceededError extends DomainError {
  readonly status = 403;
}

export class PayloadTooLargeError extends DomainError {
  readonly status = 413;
}

/** Redis or PostgreSQL unavailable in a way the caller should retry later. */
export class ServiceUnavailableError extends DomainError {
  readonly status = 503;
  constructor(
    message: string,
    readonly retryAfterSeconds = 5,
  ) {
    super(message);
  }
}
