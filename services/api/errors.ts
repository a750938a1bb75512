import { DomainError } from '../core/errors';

/** A body in a media type the route does not take (e.g. form data on a JSON route). */
export class UnsupportedMediaTypeError extends DomainError {
  readonly status = 415;
}

/** A request whose body did not arrive in the time the server gives it. */
export class RequestTimeoutError extends DomainError {
  readonly status = 408;
}

/** A method the path's resource does not take; `allow` lists those it does (the Allow header). */
export class MethodNotAllowedError extends DomainError {
  readonly status = 405;
  constructor(
    message: string,
    readonly allow: string,
  ) {
    super(message);
  }
}

/** Over a rate limit; the client may try again after `retryAfterSeconds`. `limit` is the window's budget (RateLimit-Limit). */
export class TooManyRequestsError extends DomainError {
  readonly status = 429;
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
    readonly limit?: number,
  ) {
    super(message);
  }
}
