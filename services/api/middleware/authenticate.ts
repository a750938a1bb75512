import type { RequestHandler } from 'express';
import type { AccessClaims, AuthService } from '../../core/auth';
import { ForbiddenError, UnauthorizedError } from '../../core/errors';
import type { UserRole } from '../../core/db/users';
import '../request';

const BEARER = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i;

/**
 * Verifies the bearer access token (a CPU check, no database) and sets req.user; 401 otherwise.
 * Whatever such a request is answered is one user's: no cache keeps it (a route serving
 * content, a file or an event stream, says its own Cache-Control).
 */
export function authenticate(auth: Pick<AuthService, 'verifyAccessToken'>): RequestHandler {
  return async (req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    const match = BEARER.exec(req.headers.authorization ?? '');
    if (!match?.[1]) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      throw new UnauthorizedError('a bearer access token is required');
    }
    try {
      req.user = await auth.verifyAccessToken(match[1]);
    } catch (error) {
      if (error instanceof UnauthorizedError) res.setHeader('WWW-Authenticate', 'Bearer error="invalid_token"');
      throw error;
    }
    next();
  };
}

export function requireRole(role: UserRole): RequestHandler {
  return (req, _res, next) => {
    if (req.user?.role !== role) throw new ForbiddenError(`this endpoint requires the ${role} role`);
    next();
  };
}

/** The authenticated caller's token claims; routes behind `authenticate` only. */
export function caller(req: { user?: AccessClaims }): AccessClaims {
  if (!req.user) throw new UnauthorizedError('a bearer access token is required');
  return req.user;
}

/** The authenticated caller; routes behind `authenticate` only. */
export function callerId(req: { user?: { userId: string } }): string {
  if (!req.user) throw new UnauthorizedError('a bearer access token is required');
  return req.user.userId;
}
