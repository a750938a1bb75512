import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { CONSOLE_PAGES, type Env } from '../../contract';
import type { SessionRepository } from '../db/sessions';
import { PLATFORM_USER_ID, type AccountEvent, type UserRecord, type UserRepository, type UserRole } from '../db/users';
import { ConflictError, NotFoundError, ServiceUnavailableError, UnauthorizedError, ValidationError } from '../errors';
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

/** Who made an operator's change, and why: what the audit trail (account_events) and the security event record. */
export interface OperatorChange {
  /** `cli:<os user>@<host>` for the CLI. */
  actor: string;
  reason?: string;
  /** The caller's logger; the service's own by default. */
  log?: Logger;
}

/** An account as an operator sees it. */
export interface AccountView extends UserView {
  disabled: boolean;
  /** Since when, while disabled. */
  disabledAt: Date | null;
}

/** What an operator's change did. */
export interface AccountChange {
  user: AccountView;
  /** False when the account already stood so (enable: was not disabled). */
  changed: boolean;
  /** Sessions the change ended. */
  sessionsEnded: number;
  /** When asked for: the password was replaced with one nobody knows, and a reset mail queued for the owner. */
  passwordCleared?: boolean;
}

/**
 * Registration, sessions, password reset and the caller's identity, and the operator's
 * changes to an account (role, disable, enable). A method that logs takes
 * the caller's logger last (the API passes its request's, so the lines carry the request id);
 * the service's own by default.
 */
export interface AuthService {
  /**
   * Same answer whether or not the email was free; when it was not, its owner gets a mail,
   * if `mayNotifyOwner` (asked only then, after the answer is settled) allows one now.
   */
  register(credentials: RegisterBody, log?: Logger, mayNotifyOwner?: () => Promise<boolean>): Promise<RegistrationAccepted>;
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
  /**
   * Sets a role and revokes the user's sessions, so the old role stops at the next request.
   * Throws ConflictError rather than demote the last enabled admin.
   */
  setRole(email: string, role: UserRole, change: OperatorChange): Promise<AccountChange>;
  /** Creates an admin account, or promotes an existing one (its password is then left as it is; `promoted` is false when it was an admin already). */
  createAdmin(email: string, password: string, change: OperatorChange): Promise<{ user: AccountView; created: boolean; promoted: boolean }>;
  /**
   * Disables the account: sign-in, refresh and password reset refuse it, and its sessions are
   * revoked at once (access tokens included, in every API process, through the denylist).
   * Throws ConflictError rather than disable the last enabled admin; ServiceUnavailableError
   * when the account is disabled but the revocation could not be announced (disabling it
   * again announces it again).
   */
  disable(email: string, change: OperatorChange): Promise<AccountChange>;
  /**
   * Lets the account sign in again (its old sessions stay ended). With `clearPassword`, for
   * an account whose password someone else may know: the password is replaced with one
   * nobody knows, its sessions end, and its owner is mailed a reset token, the only way in.
   */
  enable(email: string, change: OperatorChange & { clearPassword?: boolean }): Promise<AccountChange>;
  /** The account with the newest operator actions on it. */
  describe(email: string, events?: number): Promise<{ user: AccountView; events: AccountEvent[] }>;
}

const INVALID_CREDENTIALS = 'invalid email or password';
const INVALID_REFRESH = 'the refresh token is invalid, expired or revoked';
/**
 * How long after its exchange a refresh token may be exchanged again, while that exchange
 * is its session's last (tokens superseded since do not count) (SessionRepository.rotate): a browser that reloads while a refresh is
 * under way drops the answer and its cookie, and presents the old token on the next load. Past
 * this, or after its successor was used, presenting it again is reuse and ends the session.
 */
const REFRESH_REEXCHANGE_WITHIN_MS = 10_000;
const REGISTRATION_DETAIL = 'If this address can be registered, the account exists now and you can sign in; if not, its owner has been mailed.';

const sha256 = (token: string) => createHash('sha256').update(token, 'utf8').digest();
const newOpaqueToken = () => randomBytes(32).toString('base64url');
const viewOf = (user: UserRecord): UserView => ({ id: user.id, email: user.email, role: user.role });
const accountViewOf = (user: UserRecord): AccountView => ({ ...viewOf(user), disabled: user.disabledAt !== null, disabledAt: user.disabledAt });

export function createAuthService(deps: AuthServiceDependencies): AuthService {
  const { env, users, sessions, tokens, security } = deps;
  const dummyHash = createDummyHash();
  // Warm it now so the first login for an unknown email is not slower than the rest.
  dummyHash().catch(() => undefined);

  const refreshExpiry = () => new Date(Date.now() + env.REFRESH_TOKEN_TTL_SECONDS * 1000);

  /**
   * `passwordHash` is the hash the password was checked against. Undefined when, by the time
   * the session would be stored, the account is disabled, or its password (reset) or its role
   * (which the access token states) was changed.
   */
  const startSession = async (user: UserRecord, passwordHash: string): Promise<SessionTokens | undefined> => {
    const sessionId = randomUUID();
    const issued = await tokens.issue(user, sessionId);
    const refreshToken = newOpaqueToken();
    const refreshExpiresAt = refreshExpiry();
    const session = { id: sessionId, userId: user.id, accessExpiresAt: new Date(issued.expiresAt * 1000), passwordHash, role: user.role };
    if (!(await sessions.create(session, { hash: sha256(refreshToken), expiresAt: refreshExpiresAt }))) return undefined;
    return { access: { accessToken: issued.token, tokenType: 'Bearer', expiresIn: tokens.ttlSeconds }, refreshToken, refreshExpiresAt };
  };

  const revokeAndAnnounce = async (revocations: Revocation[]) => {
    if (revocations.length > 0) await deps.revoke(revocations);
  };

  /**
   * Announces the revocations a caller's own request committed (logout, a reused refresh
   * token, a password reset). When Redis cannot take them, the caller is answered 503 saying
   * what stands in PostgreSQL, not 500: a dependency is away, and a logout asked again
   * announces what this one could not (the console keeps it owed until it is confirmed).
   */
  const announceForCaller = async (revocations: Revocation[], done: string, remedy = '') => {
    try {
      await revokeAndAnnounce(revocations);
    } catch (error) {
      throw new ServiceUnavailableError(
        `${done}, but the revocation could not be announced through Redis (${error instanceof Error ? error.message : String(error)}): API processes may accept the session's access tokens until they reconnect to Redis or the tokens expire${remedy}`,
      );
    }
  };

  /** An account an operator may change: any but the platform's own. */
  const operatedAccount = async (email: string): Promise<UserRecord> => {
    const user = await users.findByEmail(email);
    if (!user || user.id === PLATFORM_USER_ID) throw new NotFoundError(`no account with email ${email}`);
    return user;
  };

  /**
   * Announces an operator's revocations once they are committed. When that fails, what
   * PostgreSQL holds (the change, and the sessions ended) stands, and the caller learns that
   * API processes may still accept the account's access tokens for a while.
   */
  const announce = async (user: UserRecord, revocations: Revocation[], outcome: string, remedy = '') => {
    try {
      await revokeAndAnnounce(revocations);
    } catch (error) {
      throw new ServiceUnavailableError(
        `${user.email} ${outcome} and its sessions are ended in PostgreSQL, but the revocation could not be announced through Redis (${error instanceof Error ? error.message : String(error)}): API processes accept the access tokens the account already holds until they reconnect to Redis or the tokens expire (ACCESS_TOKEN_TTL_SECONDS).${remedy}`,
      );
    }
  };

  const service: AuthService = {
    async register({ email, password }, log = deps.log, mayNotifyOwner = async () => true) {
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
        // Not awaited: asking and queueing must not make this answer slower than a fresh registration.
        void mayNotifyOwner()
          .then((allowed) => (allowed ? deps.sendMail({ to: email, subject: 'Your Platform Kit account', text }) : undefined))
          .catch((mailError: unknown) => log.error({ err: mailError }, 'could not queue the already-registered mail'));
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
      // Refused with the answer a wrong password gets, after the same work: a disabled account looks like any other.
      if (user.disabledAt) {
        security('login_disabled_account', { userId: user.id }, log);
        throw new UnauthorizedError(INVALID_CREDENTIALS);
      }
      let checkedHash = user.passwordHash;
      if (needsRehash(user.passwordHash)) {
        const rehashed = await hashPassword(password);
        if (await users.replacePasswordHash(user.id, user.passwordHash, rehashed)) {
          checkedHash = rehashed;
          log.info({ userId: user.id }, 'password rehashed with the current argon2 parameters');
        } else {
          // The hash changed since it was read: another sign-in's rehash of this same password
          // (the new hash stands for it too), or a reset (it does not, and startSession refuses).
          const current = await users.findById(user.id);
          if (current && (await verifyPassword(current.passwordHash, password))) checkedHash = current.passwordHash;
        }
      }
      const session = await startSession(user, checkedHash);
      // Disabled, its password reset or its role changed while the password was being checked.
      if (!session) throw new UnauthorizedError(INVALID_CREDENTIALS);
      return { ...session, userId: user.id };
    },

    async refresh(refreshToken, log = deps.log) {
      const hash = sha256(refreshToken);
      const found = await sessions.findRefreshToken(hash);
      if (!found) throw new UnauthorizedError(INVALID_REFRESH);
      const reuse = async () => {
        const revocations = await sessions.revokeSession(found.sessionId, 'refresh-token-reuse');
        // Logged once the session is ended, whether or not Redis takes the announcement.
        security('refresh_token_reuse', { userId: found.userId, sessionId: found.sessionId }, log);
        await announceForCaller(revocations, 'this refresh token was used before, so its session is ended');
        return new UnauthorizedError(INVALID_REFRESH);
      };
      if (found.sessionRevokedAt) throw new UnauthorizedError(INVALID_REFRESH);
      if (found.rotatedAt && Date.now() - found.rotatedAt.getTime() >= REFRESH_REEXCHANGE_WITHIN_MS) throw await reuse();
      if (found.expiresAt.getTime() <= Date.now()) throw new UnauthorizedError(INVALID_REFRESH);
      // The role comes from the database at every refresh, never from an earlier token.
      const issued = await tokens.issue({ id: found.userId, role: found.role }, found.sessionId);
      const next = newOpaqueToken();
      const refreshExpiresAt = refreshExpiry();
      const rotated = await sessions.rotate(hash, { hash: sha256(next), expiresAt: refreshExpiresAt }, found.sessionId, new Date(issued.expiresAt * 1000), REFRESH_REEXCHANGE_WITHIN_MS);
      if (!rotated) {
        // Exchanged before and not re-exchangeable (its successor was used, or a concurrent refresh won), or the session was revoked meanwhile.
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
      await announceForCaller(revocations, 'the session is ended in PostgreSQL', '; log out again to announce it');
    },

    async requestPasswordReset(email, log = deps.log) {
      const user = await users.findByEmail(email);
      if (!user || user.id === PLATFORM_USER_ID) return;
      if (user.disabledAt) {
        log.info({ userId: user.id }, 'no reset mail: the account is disabled');
        return;
      }
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
      security('password_reset', { userId: reset.userId }, log);
      await announceForCaller(reset.revocations, 'the password is set and the account\'s sessions are ended in PostgreSQL');
      return service.me(reset.userId);
    },

    async me(userId) {
      const user = await users.findById(userId);
      if (!user) throw new UnauthorizedError('the account no longer exists');
      return viewOf(user);
    },

    verifyAccessToken: (token) => tokens.verify(token),
    watchRevocation: (claims, onRevoked) => tokens.watchRevocation(claims, onRevoked),

    async setRole(email, role, { actor, reason, log = deps.log }) {
      const found = await operatedAccount(email);
      const result = await users.change(found.id, { endsAdmin: role !== 'admin' }, async (account) => {
        if (account.user.role === role) return { user: account.user, changed: false, revocations: [] };
        const user = await account.setRole(role);
        await account.record({ action: 'role_changed', role, actor, reason });
        return { user, changed: true, revocations: await sessions.revokeUserSessions(user.id, 'role-change', account.client) };
      });
      if (!result) throw new NotFoundError(`no account with email ${email}`);
      if (result.changed) security('role_change', { userId: found.id, role, actor, reason }, log);
      await announce(result.user, result.revocations, `is ${role} now`);
      return { user: accountViewOf(result.user), changed: result.changed, sessionsEnded: result.revocations.length };
    },

    async createAdmin(email, password, change) {
      const problem = passwordProblem(password);
      if (problem) throw new ValidationError(`the password ${problem}`, [{ field: 'password', message: problem }]);
      const existing = await users.findByEmail(email);
      if (existing) {
        const { user, changed } = await service.setRole(email, 'admin', change);
        return { user, created: false, promoted: changed };
      }
      const user = await users.insert({ id: randomUUID(), email, passwordHash: await hashPassword(password), role: 'admin' }, { action: 'admin_created', role: 'admin', actor: change.actor, reason: change.reason });
      security('admin_created', { userId: user.id, actor: change.actor, reason: change.reason }, change.log ?? deps.log);
      return { user: accountViewOf(user), created: true, promoted: false };
    },

    async disable(email, { actor, reason, log = deps.log }) {
      const found = await operatedAccount(email);
      const result = await users.change(found.id, { endsAdmin: true }, async (account) => {
        const disabled = await account.setDisabled(true);
        if (disabled) await account.record({ action: 'disabled', actor, reason });
        return { user: disabled ?? account.user, changed: disabled !== undefined, ...(await sessions.revokeForDisabledAccount(account.user.id, account.client)) };
      });
      if (!result) throw new NotFoundError(`no account with email ${email}`);
      if (result.changed) security('account_disabled', { userId: found.id, actor, reason }, log);
      await announce(result.user, result.revocations, 'is disabled', ' Disabling it again announces it again, once Redis answers.');
      return { user: accountViewOf(result.user), changed: result.changed, sessionsEnded: result.ended };
    },

    async enable(email, { actor, reason, clearPassword = false, log = deps.log }) {
      const found = await operatedAccount(email);
      // Hashed before the account is locked: argon2's tens of milliseconds are not spent holding the lock.
      const unknownPassword = clearPassword ? await hashPassword(newOpaqueToken()) : undefined;
      const result = await users.change(found.id, { endsAdmin: false }, async (account) => {
        const enabled = await account.setDisabled(false);
        if (enabled) await account.record({ action: 'enabled', actor, reason });
        const done = { user: enabled ?? account.user, enabled: enabled !== undefined };
        if (unknownPassword === undefined) return { ...done, revocations: [] };
        await account.setPasswordHash(unknownPassword);
        await account.record({ action: 'password_cleared', actor, reason });
        return { ...done, revocations: await sessions.revokeUserSessions(done.user.id, 'password-reset', account.client) };
      });
      if (!result) throw new NotFoundError(`no account with email ${email}`);
      if (result.enabled) security('account_enabled', { userId: found.id, actor, reason }, log);
      if (unknownPassword === undefined) return { user: accountViewOf(result.user), changed: result.enabled, sessionsEnded: 0 };

      security('password_cleared', { userId: found.id, actor, reason }, log);
      await announce(result.user, result.revocations, 'has its password cleared');
      try {
        await service.requestPasswordReset(result.user.email, log);
      } catch (error) {
        throw new ServiceUnavailableError(
          `${result.user.email} is enabled with its password cleared, but the reset mail could not be queued (${error instanceof Error ? error.message : String(error)}): its owner can ask for one on the sign-in page (forgot password)`,
        );
      }
      return { user: accountViewOf(result.user), changed: result.enabled, sessionsEnded: result.revocations.length, passwordCleared: true };
    },

    async describe(email, events = 10) {
      const user = await operatedAccount(email);
      return { user: accountViewOf(user), events: await users.events(user.id, events) };
    },
  };
  return service;
}
