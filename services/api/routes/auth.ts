import type { Request, RequestHandler } from 'express';
import { API_PREFIX, CONSOLE_PAGES } from '../../contract';
import {
  AccessTokenResponse,
  LoginBody,
  PasswordResetConfirmBody,
  PasswordResetRequestBody,
  RegisterBody,
  RegistrationAccepted,
  UserView,
  type AccessClaims,
  type AuthService,
  type SecurityEvents,
} from '../../core/auth';
import { UnauthorizedError } from '../../core/errors';
import type { Logger } from '../../core/logger';
import { clearRefreshCookie, PLAIN_HTTP_REFRESH_COOKIE, readRefreshCookie, refreshCookieFor, SECURE_REFRESH_COOKIE, setRefreshCookie } from '../cookies';
import { endpoint, respond, type Endpoint } from '../endpoints';
import type { AccountLockout } from '../middleware/account-lockout';
import { callerId } from '../middleware/authenticate';
import { clientAddressKey } from '../middleware/client-address';
import { sameOriginOnly } from '../middleware/same-origin';

export interface AuthRoutesOptions {
  auth: AuthService;
  security: SecurityEvents;
  /** Per client address (IPv6 by /64) on every endpoint that takes a credential. */
  credentialLimit: RequestHandler;
  /** Per client address on refresh (REFRESH_RATE_LIMIT_PER_MINUTE), apart from the credential limit. */
  refreshLimit: RequestHandler;
  /** Per account: password-reset requests; `log` is the request's. */
  resetLimit: (account: string, log: Logger) => Promise<void>;
  /** Per account: whether the owner of a taken address may be mailed about another attempt to register it now. */
  registrationNoticeLimit: (account: string, log: Logger) => Promise<boolean>;
  lockout: AccountLockout;
  cookieSecure: boolean;
}

const tooManyAttempts = respond.tooManyRequests('Too many attempts from this address or for this account; see Retry-After and RateLimit-*.');
const SET_COOKIE_HEADER = {
  'Set-Cookie': {
    description: `The refresh token, HttpOnly and SameSite=Strict: \`${SECURE_REFRESH_COOKIE.name}\`, Secure, Path=${SECURE_REFRESH_COOKIE.path}; with COOKIE_SECURE=false (a local run over plain HTTP) \`${PLAIN_HTTP_REFRESH_COOKIE.name}\`, Path=${PLAIN_HTTP_REFRESH_COOKIE.path}.`,
    schema: { type: 'string' as const },
  },
};

/** What logout, and a refresh refused for its cookie, answer with: the cookie expired, so the browser drops it. */
const CLEAR_COOKIE_HEADER = {
  'Set-Cookie': {
    description: `Clears the refresh cookie: its name (\`${SECURE_REFRESH_COOKIE.name}\`, or \`${PLAIN_HTTP_REFRESH_COOKIE.name}\` with COOKIE_SECURE=false) with an empty value and an expiry in the past, on its Path.`,
    schema: { type: 'string' as const },
  },
};

const otherOrigin = respond.problem('Sent by a page of another origin (Sec-Fetch-Site, or Origin): refused, the cookie untouched.');

const noStore: RequestHandler = (_req, res, next) => {
  res.setHeader('Cache-Control', 'no-store');
  next();
};

/** The bearer token of a logout, when one is sent and still good; logging out with a dead one is no error. */
async function optionalClaims(auth: AuthService, req: Request): Promise<AccessClaims | undefined> {
  const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(req.headers.authorization ?? '');
  if (!match?.[1]) return undefined;
  try {
    return await auth.verifyAccessToken(match[1]);
  } catch (error) {
    if (error instanceof UnauthorizedError) return undefined;
    throw error;
  }
}

export function authEndpoints({ auth, security, credentialLimit, refreshLimit, resetLimit, registrationNoticeLimit, lockout, cookieSecure }: AuthRoutesOptions): Endpoint[] {
  const cookie = refreshCookieFor(cookieSecure);
  return [
    endpoint({
      method: 'post',
      path: `${API_PREFIX}/auth/register`,
      operationId: 'register',
      summary: 'Create an account',
      description:
        'Answers 202 with the same body whether or not the address was free, so registration cannot tell which addresses have accounts; the owner of an address already registered gets a mail instead. Then sign in.',
      tag: 'auth',
      access: 'public',
      before: [credentialLimit],
      request: { body: RegisterBody.meta({ id: 'RegisterBody' }) },
      responses: {
        202: respond.json('Accepted.', RegistrationAccepted.meta({ id: 'RegistrationAccepted' })),
        400: respond.problem('Invalid email, or a password outside the policy (12-256 characters, not a common password).'),
        413: respond.problem('Body over the JSON limit.'),
        415: respond.problem('The body is not JSON.'),
        429: tooManyAttempts,
      },
      async handle({ body }, req, res) {
        res.status(202).json(await auth.register(body, req.log, () => registrationNoticeLimit(body.email, req.log)));
      },
    }),
    endpoint({
      method: 'post',
      path: `${API_PREFIX}/auth/login`,
      operationId: 'login',
      summary: 'Exchange credentials for a short-lived access token and a refresh cookie',
      tag: 'auth',
      access: 'public',
      before: [credentialLimit, noStore],
      request: { body: LoginBody.meta({ id: 'LoginBody' }) },
      responses: {
        200: respond.json('A bearer access token; the refresh token is in the cookie.', AccessTokenResponse.meta({ id: 'AccessToken' }), SET_COOKIE_HEADER),
        400: respond.problem('Malformed credentials.'),
        401: respond.problem('Unknown email or wrong password (one answer for both).'),
        413: respond.problem('Body over the JSON limit.'),
        415: respond.problem('The body is not JSON.'),
        429: tooManyAttempts,
      },
      async handle({ body }, req, res) {
        const ip = clientAddressKey(req);
        await lockout.assertOpen(body.email, ip, req.log);
        let session;
        try {
          session = await auth.login(body, req.log);
        } catch (error) {
          if (error instanceof UnauthorizedError) {
            security('login_failed', { email: body.email, ip }, req.log);
            await lockout.recordFailure(body.email, ip, req.log);
          }
          throw error;
        }
        await lockout.recordSuccess(body.email, ip, req.log);
        setRefreshCookie(res, cookie, session.refreshToken, session.refreshExpiresAt);
        res.json(session.access);
      },
    }),
    endpoint({
      method: 'post',
      path: `${API_PREFIX}/auth/refresh`,
      operationId: 'refreshSession',
      summary: 'A new access token for the refresh cookie; the cookie is rotated',
      description:
        'Each refresh token works once. Presenting one that was already exchanged revokes its whole session (every token of the family): a stolen and replayed token ends the session for thief and owner alike.',
      tag: 'auth',
      access: 'public',
      security: [{ refreshCookie: [] }],
      before: [sameOriginOnly, refreshLimit, noStore],
      responses: {
        200: respond.json('A new access token; the rotated refresh token is in the cookie.', AccessTokenResponse, SET_COOKIE_HEADER),
        401: respond.problem('No refresh cookie, or one that is invalid, expired, revoked or already used (that one is cleared).', CLEAR_COOKIE_HEADER),
        403: otherOrigin,
        429: tooManyAttempts,
      },
      async handle(_request, req, res) {
        const refreshToken = readRefreshCookie(req, cookie);
        if (!refreshToken) throw new UnauthorizedError('no refresh cookie');
        try {
          const session = await auth.refresh(refreshToken, req.log);
          setRefreshCookie(res, cookie, session.refreshToken, session.refreshExpiresAt);
          res.json(session.access);
        } catch (error) {
          if (error instanceof UnauthorizedError) clearRefreshCookie(res, cookie);
          throw error;
        }
      },
    }),
    endpoint({
      method: 'post',
      path: `${API_PREFIX}/auth/logout`,
      operationId: 'logout',
      summary: 'End the session: the access token and the refresh family are revoked',
      description:
        'Send the bearer access token, the refresh cookie, or both. The access token is denied until it expires; the session\'s refresh tokens stop working. Always 204, also when already logged out, unless a page of another origin sent it (403).',
      tag: 'auth',
      access: 'public',
      // Either credential, or none: logout is 204 whatever it is sent with.
      security: [{ bearerAuth: [] }, { refreshCookie: [] }, {}],
      before: [sameOriginOnly, noStore],
      responses: { 204: respond.empty('Logged out; the refresh cookie is cleared.', CLEAR_COOKIE_HEADER), 403: otherOrigin },
      async handle(_request, req, res) {
        await auth.logout(await optionalClaims(auth, req), readRefreshCookie(req, cookie));
        clearRefreshCookie(res, cookie);
        res.status(204).end();
      },
    }),
    endpoint({
      method: 'post',
      path: `${API_PREFIX}/auth/password-reset`,
      operationId: 'requestPasswordReset',
      summary: 'Mail a single-use password-reset token',
      description:
        `Always 202, answered before any lookup: neither the answer nor its timing tells whether the address has an account. The mail gives the token and a link to the web console's reset page with the token in the URL fragment (\`${CONSOLE_PAGES.resetPassword}#token=…\`), which browsers never send to a server.`,
      tag: 'auth',
      access: 'public',
      before: [credentialLimit],
      request: { body: PasswordResetRequestBody.meta({ id: 'PasswordResetRequest' }) },
      responses: {
        202: respond.empty('Accepted; a mail goes out when the address has an account.'),
        400: respond.problem('Not an email address.'),
        413: respond.problem('Body over the JSON limit.'),
        415: respond.problem('The body is not JSON.'),
        429: tooManyAttempts,
      },
      async handle({ body }, req, res) {
        await resetLimit(body.email, req.log);
        res.status(202).end();
        auth.requestPasswordReset(body.email, req.log).catch((error: unknown) => req.log.error({ err: error }, 'password reset request failed'));
      },
    }),
    endpoint({
      method: 'post',
      path: `${API_PREFIX}/auth/password-reset/confirm`,
      operationId: 'confirmPasswordReset',
      summary: 'Set a new password with a reset token; every session of the account ends',
      tag: 'auth',
      access: 'public',
      before: [credentialLimit],
      request: { body: PasswordResetConfirmBody.meta({ id: 'PasswordResetConfirm' }) },
      responses: {
        204: respond.empty('The password is set; earlier reset tokens and all sessions are revoked, and the account\'s login lockout is lifted (from every address it signed in from, and from this one).'),
        400: respond.problem('A token that is invalid, used or expired, or a password outside the policy.'),
        413: respond.problem('Body over the JSON limit.'),
        415: respond.problem('The body is not JSON.'),
        429: tooManyAttempts,
      },
      async handle({ body }, req, res) {
        const account = await auth.confirmPasswordReset(body.token, body.password, req.log);
        // The token proved the mailbox: failed guesses of the old password no longer lock out its owner.
        await lockout.recordReset(account.email, clientAddressKey(req), req.log);
        res.status(204).end();
      },
    }),
    endpoint({
      method: 'get',
      path: `${API_PREFIX}/auth/me`,
      operationId: 'getCurrentUser',
      summary: 'The caller',
      tag: 'auth',
      access: 'user',
      responses: { 200: respond.json('The caller.', UserView.meta({ id: 'User' })) },
      async handle(_request, req, res) {
        res.json(await auth.me(callerId(req)));
      },
    }),
  ];
}
