import { randomUUID, webcrypto } from 'node:crypto';
import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import type { Env } from '../../contract';
import { UnauthorizedError } from '../errors';
import type { UserRole } from '../db/users';

/** Who an access token speaks for. */
export interface AccessClaims {
  userId: string;
  role: UserRole;
  tokenId: string;
  expiresAt: number;
}

export const ACCESS_TOKEN_AUDIENCE = 'platform-kit-api';
const ALGORITHM = 'HS256';
/** Clock skew tolerated between the issuing and the verifying process. */
const CLOCK_TOLERANCE_SECONDS = 5;
/** Verified tokens remembered per process; a client reuses its token for every call until it expires. */
const VERIFIED_CACHE_SIZE = 10_000;

export type TokenEnv = Pick<Env, 'JWT_SECRET' | 'JWT_ISSUER' | 'ACCESS_TOKEN_TTL_SECONDS'>;

/**
 * Whether an access token was revoked before it expired (logout, password reset). Asked on
 * every verification, cached tokens included: the cache vouches for a signature, never for
 * a token's standing.
 */
export type RevocationCheck = (claims: AccessClaims) => boolean | Promise<boolean>;

export interface AccessTokens {
  readonly ttlSeconds: number;
  issue(user: { id: string; role: UserRole }): Promise<string>;
  /** Throws UnauthorizedError for anything but a valid, unexpired token of ours. */
  verify(token: string): Promise<AccessClaims>;
}

/**
 * Short-lived HS256 access tokens. The key is imported once here, so verifying a request
 * is a pure CPU check with no per-call key setup and no database lookup.
 */
export function createAccessTokens(env: TokenEnv, options: { isRevoked?: RevocationCheck } = {}): AccessTokens {
  const isRevoked: RevocationCheck = options.isRevoked ?? (() => false);
  // jose would import raw key bytes again on every call; a non-extractable CryptoKey imported here is reused.
  const key = webcrypto.subtle.importKey('raw', Buffer.from(env.JWT_SECRET, 'utf8'), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
  const verifyOptions = {
    algorithms: [ALGORITHM],
    issuer: env.JWT_ISSUER,
    audience: ACCESS_TOKEN_AUDIENCE,
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    requiredClaims: ['sub', 'exp', 'iat', 'jti'],
  };

  // A token whose signature verified once verifies again until it expires: the signature covers every
  // claim, and the cache is keyed by the whole token, signature included, so a changed byte is a miss.
  // The HMAC check is the costliest step of an authenticated request (bench/FINDINGS.md).
  const verified = new Map<string, AccessClaims>();
  const remember = (token: string, claims: AccessClaims) => {
    if (verified.size >= VERIFIED_CACHE_SIZE) {
      const oldest = verified.keys().next();
      if (!oldest.done) verified.delete(oldest.value);
    }
    verified.set(token, claims);
  };

  return {
    ttlSeconds: env.ACCESS_TOKEN_TTL_SECONDS,
    async issue(user) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ role: user.role })
        .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
        .setSubject(user.id)
        .setIssuer(env.JWT_ISSUER)
        .setAudience(ACCESS_TOKEN_AUDIENCE)
        .setIssuedAt(now)
        .setExpirationTime(now + env.ACCESS_TOKEN_TTL_SECONDS)
        .setJti(randomUUID())
        .sign(await key);
    },
    async verify(token) {
      const known = verified.get(token);
      if (known) {
        if (Date.now() / 1000 < known.expiresAt + CLOCK_TOLERANCE_SECONDS) {
          if (await isRevoked(known)) {
            verified.delete(token);
            throw new UnauthorizedError('the access token was revoked');
          }
          return known;
        }
        verified.delete(token);
      }
      try {
        const { payload } = await jwtVerify(token, await key, verifyOptions);
        const role = payload.role;
        if ((role !== 'user' && role !== 'admin') || !payload.sub || !payload.jti || payload.exp === undefined) {
          throw new UnauthorizedError('the access token is malformed');
        }
        const claims: AccessClaims = { userId: payload.sub, role, tokenId: payload.jti, expiresAt: payload.exp };
        if (await isRevoked(claims)) throw new UnauthorizedError('the access token was revoked');
        remember(token, claims);
        return claims;
      } catch (error) {
        if (error instanceof UnauthorizedError) throw error;
        if (error instanceof joseErrors.JWTExpired) throw new UnauthorizedError('the access token has expired');
        if (error instanceof joseErrors.JOSEError) throw new UnauthorizedError('the access token is invalid');
        throw error;
      }
    },
  };
}
