import { randomUUID } from 'node:crypto';
import { SignJWT, errors as joseErrors, jwtVerify, type JWTHeaderParameters } from 'jose';
import type { Env } from '../../contract';
import { UnauthorizedError } from '../errors';
import type { UserRole } from '../db/users';
import { SIGNING_ALGORITHM, type Keyring } from './signing-keys';

/** Who an access token speaks for. */
export interface AccessClaims {
  userId: string;
  role: UserRole;
  tokenId: string;
  /** The session (refresh-token family) the token was issued in. */
  sessionId: string;
  expiresAt: number;
  kid: string;
}

export const ACCESS_TOKEN_AUDIENCE = 'platform-kit-api';
/**
 * Clock skew tolerated between the issuing and the verifying process: a token verifies for this
 * long past its `exp`, so the denylist holds a revocation this long past its `until` too.
 */
export const CLOCK_TOLERANCE_SECONDS = 5;
/** Verified tokens remembered per process; a client reuses its token for every call until it expires. */
const VERIFIED_CACHE_SIZE = 10_000;

export type TokenEnv = Pick<Env, 'JWT_ISSUER' | 'ACCESS_TOKEN_TTL_SECONDS'>;

/**
 * Whether an access token was revoked before it expired. Asked on every verification,
 * cached tokens included: the cache vouches for a signature, never for a token's standing.
 * Synchronous on purpose: it reads the in-memory denylist mirror (revocations.ts).
 */
export type RevocationCheck = (claims: AccessClaims) => boolean;

/** Subscribes to additions to the denylist (RevocationMirror.onChange); returns the unsubscribe. */
export type RevocationFeed = (listener: () => void) => () => void;

export interface AccessTokens {
  readonly ttlSeconds: number;
  issue(user: { id: string; role: UserRole }, sessionId: string): Promise<{ token: string; expiresAt: number; tokenId: string }>;
  /** Throws UnauthorizedError for anything but a valid, unexpired, unrevoked token of ours. */
  verify(token: string): Promise<AccessClaims>;
  /**
   * Calls `onRevoked` once, as soon as the verified token is revoked (itself or its session),
   * for what a token keeps open past its request. Returns the unsubscribe.
   */
  watchRevocation(claims: AccessClaims, onRevoked: () => void): () => void;
}

/**
 * Short-lived EdDSA access tokens with a `kid`. Only EdDSA is accepted (`alg: none`,
 * HS256 with the public key as a secret and every other algorithm are refused before any
 * key is chosen), and only keys of the keyring verify.
 */
export function createAccessTokens(env: TokenEnv, keyring: Keyring, options: { isRevoked?: RevocationCheck; revocations?: RevocationFeed } = {}): AccessTokens {
  const isRevoked: RevocationCheck = options.isRevoked ?? (() => false);
  const revocations: RevocationFeed = options.revocations ?? (() => () => undefined);
  const verifyOptions = {
    algorithms: [SIGNING_ALGORITHM],
    issuer: env.JWT_ISSUER,
    audience: ACCESS_TOKEN_AUDIENCE,
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    requiredClaims: ['sub', 'exp', 'iat', 'jti', 'iss', 'aud'],
  };
  const keyFor = async (header: JWTHeaderParameters) => {
    const key = header.kid ? await keyring.verificationKey(header.kid) : undefined;
    if (!key) throw new UnauthorizedError('the access token was signed with an unknown key');
    return key;
  };

  // A token whose signature verified once verifies again until it expires: the signature covers every
  // claim, and the cache is keyed by the whole token, signature included, so a changed byte is a miss.
  // The signature check is the costliest step of an authenticated request (bench/FINDINGS.md).
  const verified = new Map<string, AccessClaims>();
  const remember = (token: string, claims: AccessClaims) => {
    if (verified.size >= VERIFIED_CACHE_SIZE) {
      const oldest = verified.keys().next();
      if (!oldest.done) verified.delete(oldest.value);
    }
    verified.set(token, claims);
  };
  const standing = (token: string, claims: AccessClaims): AccessClaims => {
    if (isRevoked(claims)) {
      verified.delete(token);
      throw new UnauthorizedError('the access token was revoked');
    }
    return claims;
  };

  return {
    ttlSeconds: env.ACCESS_TOKEN_TTL_SECONDS,
    async issue(user, sessionId) {
      const now = Math.floor(Date.now() / 1000);
      const expiresAt = now + env.ACCESS_TOKEN_TTL_SECONDS;
      const tokenId = randomUUID();
      const signer = keyring.current();
      const token = await new SignJWT({ role: user.role, sid: sessionId })
        .setProtectedHeader({ alg: SIGNING_ALGORITHM, kid: signer.kid, typ: 'JWT' })
        .setSubject(user.id)
        .setIssuer(env.JWT_ISSUER)
        .setAudience(ACCESS_TOKEN_AUDIENCE)
        .setIssuedAt(now)
        .setExpirationTime(expiresAt)
        .setJti(tokenId)
        .sign(signer.key);
      return { token, expiresAt, tokenId };
    },
    async verify(token) {
      const known = verified.get(token);
      if (known) {
        if (Date.now() / 1000 < known.expiresAt + CLOCK_TOLERANCE_SECONDS && keyring.trusts(known.kid)) return standing(token, known);
        verified.delete(token);
      }
      try {
        const { payload, protectedHeader } = await jwtVerify(token, keyFor, verifyOptions);
        const { role, sid } = payload;
        if ((role !== 'user' && role !== 'admin') || typeof sid !== 'string' || !payload.sub || !payload.jti || payload.exp === undefined || !protectedHeader.kid) {
          throw new UnauthorizedError('the access token is malformed');
        }
        const claims: AccessClaims = { userId: payload.sub, role, tokenId: payload.jti, sessionId: sid, expiresAt: payload.exp, kid: protectedHeader.kid };
        standing(token, claims);
        remember(token, claims);
        return claims;
      } catch (error) {
        if (error instanceof UnauthorizedError) throw error;
        if (error instanceof joseErrors.JWTExpired) throw new UnauthorizedError('the access token has expired');
        if (error instanceof joseErrors.JOSEError) throw new UnauthorizedError('the access token is invalid');
        throw error;
      }
    },
    watchRevocation(claims, onRevoked) {
      let watching = true;
      const stop = () => {
        watching = false;
        unsubscribe();
      };
      const check = () => {
        if (!watching || !isRevoked(claims)) return;
        stop();
        onRevoked();
      };
      const unsubscribe = revocations(check);
      // Revoked between the request's verification and now: no change would come to say so.
      check();
      return stop;
    },
  };
}
