import type { AccessClaims } from '../core/auth';
import type { Logger } from '../core/logger';

declare module 'express-serve-static-core' {
  interface Request {
    /** Correlation id of this request, echoed in X-Request-Id and carried by every log line. */
    requestId: string;
    /** The API's logger bound to this request's id: what code handling the request logs with, core services included. */
    log: Logger;
    /** Set by the authenticate middleware. */
    user?: AccessClaims;
  }
}
