import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { CONSOLE_PAGES, type Env } from '../../contract';
import type { SessionRepository } from '../db/sessions';
import { PLATFORM_USER_ID, type UserRecord, type UserRepository, type UserRole } from '../db/users';
import { ConflictError, NotFoundError, UnauthorizedError, ValidationError } from '../errors';
import type { Logger } from '../logger';
import type { AccessClaims, AccessTokens } from './tokens';
import type { AccessTokenResponse, LoginBody, RegisterBody, RegistrationAccepted, UserView } from './credentials';
import { passwordProblem } from './password-policy';
import { createDummyHash, hashPassword, needsRehash, verifyPassword } from './passwords';
import type { Revocation } from './revocations';
import type { SecurityEvents } from './security-events';

/** A new access token with the refresh token that continues its session. */
export interface SessionTokens {
  access: AccessTokenResponse;
  /** Opaque, 256 random bits, base64url; stored only as its SHA-256. */
  refreshToken: string;
  refreshExpiresAt: Date;
}

export interface Mail {
  to: string;
  subject: string;
  text: string;
}

export type AuthEnv = Pick<Env, 'REFRESH_TOKEN_TTL_SECONDS' | 'PASSWORD_RESET_TTL_SECONDS' | 'PUBLIC_URL'>;

/** PUBLIC_URL without a trailing slash, so the links mails build from it never hold `//`. */
function siteOf(env: Pick<AuthEnv, 'PUBLIC_URL'>): string {
  return env.PUBLIC_URL.replace(/\/+$/, '');
}

export interface AuthServiceDependencies {
  env: AuthEnv;
  users: UserRepository;
  sessions: SessionRepository;
  tokens: AccessTokens;
  /** Writes revocations to the denylist (Redis, announced to every API process). */
  revoke: (revocations: Revocation[]) => Promise<void>;
  /** Queues a mail (an email.send job owned by the platform's account). */
  sendMail: (mail: Mail) => Promise<void>;
  security: SecurityEvents;
  log: Logger;
}

/**
 * Registration, sessions, password reset and the caller's identity. A method that logs takes
 * the caller's logger last (the API passes its request's, so the lines carry the request id);
 * the service's own by default.
 */
export interface AuthService {
  /** Same answer whether or not the email was free; when it was not, its owner gets a mail. */
  register(credentials: RegisterBody, log?: Logger): Promise<RegistrationAccepted>;
  /** Throws UnauthorizedError with one message for an unknown email and a wrong password alike. */
  login(credentials: LoginBody, log?: Logger): Promise<SessionTokens & { userId: string }>;
  /** Rotates the refresh token; presenting one already rotated revokes its whole session. */
  refresh(refreshToken: string, log?: Logger): Promise<SessionTokens>;
  /** Revokes the access token (by jti) and its session; a refresh token, when given, revokes its own session too. */
  logout(claims: AccessClaims | undefined, refreshToken: string | undefined): Promise<void>;
  /** Mails a reset token when the account exists; says nothing either way. */
  requestPasswordReset(email: string, log?: Logger): Promise<void>;
  /** Returns the account whose password it set; throws ValidationError when the token is unknown, used or expired. */
  confirmPasswordReset(token: string, password: string, log?: Logger): Promise<UserView>;
  /** Throws UnauthorizedError when the account no longer exists. */
  me(userId: string): Promise<UserView>;
  verifyAccessToken(token: string): Promise<AccessClaims>;
  /** Calls `onRevoked` once when the verified token or its session is revoked (sign-out, reset, role change); returns the unsubscribe. */
  watchRevocation(claims: AccessClaims, onRevoked: () => void): () => void;
  /** Sets a role and revokes the user's sessions, so the old role stops at the next request. */
  setRole(email: string, role: UserRole, log?: Logger): Promise<UserView>;
  /** Creates an admin account, or promotes an existing one (its password is then left as it is). */
  createAdmin(email: string, password: string, log?: Logger): Promise<{ user: UserView; created: boolean }>;
}

const INVALID_CREDENTIALS = 'invalid email or password';
const INVALID_REFRESH = 'the refresh token is invalid, expired or revoked';
const REGISTRATION_DETAIL = 'If this address can be registered, the account exists now and you can sign in; if not, its owner has been mailed.';

const sha256 = (token: string) => createHash('sha256').update(token, 'utf8').digest();
const newOpaqueToken = () => randomBytes(32).toString('base64url');
const viewOf = (user: UserRecord): UserView => ({ id: user.id, email: user.email, role: user.role });

export function createAuthService(deps: AuthServiceDependencies): AuthService {
  const { env, users, sessions, tokens, security } = deps;
  const dummyHash = createDummyHash();
  // Warm it now so the first login for an unknown email is not slower than the rest.
  dummyHash().catch(() => undefined);

  const refreshExpiry = () => new Date(Date.now() + env.REFRESH_TOKEN_TTL_SECONDS * 1000);

  const startSession = async (user: UserRecord): Promise<SessionTokens> => {
    const sessionId = randomUUID();
    const issued = await tokens.issue(user, sessionId);
    const refreshToken = newOpaqueToken();
    const refreshExpiresAt = refreshExpiry();
    await sessions.create({ id: sessionId, userId: user.id, accessExpiresAt: new Date(issued.expiresAt * 1000) }, { hash: sha256(refreshToken), expiresAt: refreshExpiresAt });
    return { access: { accessToken: issued.token, tokenType: 'Bearer', expiresIn: tokens.ttlSeconds }, refreshToken, refreshExpiresAt };
  };

  const revokeAndAnnounce = async (revocations: Revocation[]) => {
    if (revocations.length > 0) await deps.revoke(revocations);
  };

  const service: AuthService = {
    async register({ email, password }, log = deps.log) {
      // The hash is computed for a taken address too: both answers cost the same argon2 work.
      const passwordHash = await hashPassword(password);
      try {
        await users.insert({ id: randomUUID(), email, passwordHash });
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
        const site = siteOf(env);
        const text = [
          'Someone tried to create an account with this address, which already has one.',
          '',
          `If it was you: sign in instead (${site}${CONSOLE_PAGES.signIn}), or reset your password (${site}${CONSOLE_PAGES.forgotPassword}).`,
          'If it was not you: nothing changed; you can ignore this mail.',
        ].join('\n');
        // Not awaited: queueing the mail must not make this answer slower than a fresh registration.
        deps.sendMail({ to: email, subject: 'Your Platform Kit account', text }).catch((mailError: unknown) => log.error({ err: mailError }, 'could not queue the already-registered mail'));
      }
      return { email, detail: REGISTRATION_DETAIL };
    },

    async login({ email, password }, log = deps.log) {
      const user = await users.findByEmail(email);
      if (!user || user.id === PLATFORM_USER_ID) {
        await verifyPassword(await dummyHash(), password);
        throw new UnauthorizedError(INVALID_CREDENTIALS);
      }
      if (!(await verifyPassword(user.passwordHash, password))) throw new UnauthorizedError(INVALID_CREDENTIALS);
      if (needsRehash(user.passwordHash)) {
        await users.replacePasswordHash(user.id, user.passwordHash, await hashPassword(password));
        log.info({ userId: user.id }, 'password rehashed with the current argon2 parameters');
      }
      return { ...(await startSession(user)), userId: user.id };
    },

    async refresh(refreshToken, log = deps.log) {
      const hash = sha256(refreshToken);
      const found = await sessions.findRefreshToken(hash);
      if (!found) throw new UnauthorizedError(INVALID_REFRESH);
      const reuse = async () => {
        await revokeAndAnnounce(await sessions.revokeSession(found.sessionId, 'refresh-token-reuse'));
        security('refresh_token_reuse', { userId: found.userId, sessionId: found.sessionId }, log);
        return new UnauthorizedError(INVALID_REFRESH);
      };
      if (found.sessionRevokedAt) throw new UnauthorizedError(INVALID_REFRESH);
      if (found.rotatedAt) throw await reuse();
      if (found.expiresAt.getTime() <= Date.now()) throw new UnauthorizedError(INVALID_REFRESH);
      // The role comes from the database at every refresh, never from an earlier token.
      const issued = await tokens.issue({ id: found.userId, role: found.role }, found.sessionId);
      const next = newOpaqueToken();
      const refreshExpiresAt = refreshExpiry();
      const rotated = await sessions.rotate(hash, { hash: sha256(next), expiresAt: refreshExpiresAt }, found.sessionId, new Date(issued.expiresAt * 1000));
      if (!rotated) {
        // Lost to a concurrent refresh with the same token, or the session was revoked meanwhile.
        const again = await sessions.findRefreshToken(hash);
        if (again && !again.sessionRevokedAt) throw await reuse();
        throw new UnauthorizedError(INVALID_REFRESH);
      }
      return { access: { accessToken: issued.token, tokenType: 'Bearer', expiresIn: tokens.ttlSeconds }, refreshToken: next, refreshExpiresAt };
    },

    async logout(claims, refreshToken) {
      const revocations: Revocation[] = [];
      if (claims) {
        revocations.push({ kind: 'token', id: claims.tokenId, until: claims.expiresAt });
        revocations.push(...(await sessions.revokeSession(claims.sessionId, 'logout')));
      }
      if (refreshToken) {
        const found = await sessions.findRefreshToken(sha256(refreshToken));
        if (found) revocations.push(...(await sessions.revokeSession(found.sessionId, 'logout')));
      }
      await revokeAndAnnounce(revocations);
    },

    async requestPasswordReset(email, log = deps.log) {
      const user = await users.findByEmail(email);
      if (!user || user.id === PLATFORM_USER_ID) return;
      const token = newOpaqueToken();
      const expiresAt = new Date(Date.now() + env.PASSWORD_RESET_TTL_SECONDS * 1000);
      await sessions.createResetToken(user.id, sha256(token), expiresAt);
      const minutes = Math.round(env.PASSWORD_RESET_TTL_SECONDS / 60);
      const site = siteOf(env);
      const text = [
        'Someone asked to reset the password of your Platform Kit account.',
        '',
        `Reset token (single use, valid for ${minutes} minutes): ${token}`,
        '',
        // In the fragment, which browsers never send: the token stays out of access logs, proxies and Referer headers.
        `Set a new password at ${site}${CONSOLE_PAGES.resetPassword}#token=${token}`,
        `or with: curl -X POST ${site}/v1/auth/password-reset/confirm -H 'content-type: application/json' -d '{"token":"${token}","password":"<new password>"}'`,
        '',
        'If it was not you, ignore this mail: your password stays as it is.',
      ].join('\n');
      await deps.sendMail({ to: user.email, subject: 'Reset your Platform Kit password', text });
      security('password_reset_requested', { userId: user.id }, log);
    },

    async confirmPasswordReset(token, password, log = deps.log) {
      const problem = passwordProblem(password);
      if (problem) throw new ValidationError('invalid body', [{ field: 'body.password', message: problem }]);
      const passwordHash = await hashPassword(password);
      const reset = await sessions.resetPassword(sha256(token), passwordHash);
      if (!reset) throw new ValidationError('the reset token is invalid, used or expired', [{ field: 'body.token', message: 'is invalid, used or expired' }]);
      await revokeAndAnnounce(reset.revocations);
      security('password_reset', { userId: reset.userId }, log);
      return service.me(reset.userId);
    },

    async me(userId) {
      const user = await users.findById(userId);
      if (!user) throw new UnauthorizedError('the account no longer exists');
      return viewOf(user);
    },

    verifyAccessToken: (token) => tokens.verify(token),
    watchRevocation: (claims, onRevoked) => tokens.watchRevocation(claims, onRevoked),

    async setRole(email, role, log = deps.log) {
      const user = await users.findByEmail(email);
      if (!user || user.id === PLATFORM_USER_ID) throw new NotFoundError(`no account with email ${email}`);
      await users.setRole(user.id, role);
      await revokeAndAnnounce(await sessions.revokeUserSessions(user.id, 'role-change'));
      security('role_change', { userId: user.id, role }, log);
      return { ...viewOf(user), role };
    },

    async createAdmin(email, password, log = deps.log) {
      const problem = passwordProblem(password);
      if (problem) throw new ValidationError(`the password ${problem}`, [{ field: 'password', message: problem }]);
      const existing = await users.findByEmail(email);
      if (existing) {
        const user = await service.setRole(email, 'admin', log);
        return { user, created: false };
      }
      const user = await users.insert({ id: randomUUID(), email, passwordHash: await hashPassword(password), role: 'admin' });
      security('admin_created', { userId: user.id }, log);
      return { user: viewOf(user), created: true };
    },
  };
  return service;
}
