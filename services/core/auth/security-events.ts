import type { SecurityEventKind } from '../../contract';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';

/** What a security event may carry: identifiers and addresses, never a password, a token or a hash. */
export interface SecurityEventFields {
  userId?: string;
  sessionId?: string;
  ip?: string;
  /** For events about an account that may not exist (a failed login): the email as typed, lower-cased. */
  email?: string;
  role?: string;
  /** Who made an operator's change (`cli:<os user>@<host>`), and the reason given. */
  actor?: string;
  reason?: string;
  retryAfterSeconds?: number;
  /** What a lockout covers: the account from one address, or the account from addresses it never signed in from. */
  scope?: 'address' | 'account';
}

/** `log` is the caller's (the API passes its request's, so the event carries the request id); the service's own by default. */
export type SecurityEvents = (kind: SecurityEventKind, fields?: SecurityEventFields, log?: Logger) => void;

/** A structured log event (`event: "security"`, `kind`) and a count in platform_security_events_total{kind}. */
export function createSecurityEvents(serviceLog: Logger, metrics?: Pick<Metrics, 'securityEvents'>): SecurityEvents {
  return (kind, fields = {}, log = serviceLog) => {
    metrics?.securityEvents.inc({ kind });
    log.warn({ event: 'security', kind, ...fields }, `security event: ${kind}`);
  };
}
