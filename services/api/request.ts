import type { AccessClaims } from '../core/auth';

declare module 'express-serve-static-core' {
  interface Request {
    /** Correlation id of this request, echoed in X-Request-Id and carried by every log line. */
    requestId: string;
    /** Set by the authenticate middleware. */
    user?: AccessClaims;
  }
}
