import type { RequestHandler } from 'express';
import { API_PREFIX } from '../../contract';
import { AccessTokenResponse, LoginBody, RegisterBody, RegisteredUser, UserView, type AuthService } from '../../core/auth';
import { endpoint, respond, RETRY_AFTER_HEADER, type Endpoint } from '../endpoints';
import { callerId } from '../middleware/authenticate';

export interface AuthRoutesOptions {
  auth: AuthService;
  /** Per-IP limit on the endpoints that take a password. */
  credentialLimit: RequestHandler;
}

const tooManyAttempts = respond.problem('Too many attempts from this address; see Retry-After.', RETRY_AFTER_HEADER);

export function authEndpoints({ auth, credentialLimit }: AuthRoutesOptions): Endpoint[] {
  return [
    endpoint({
      method: 'post',
      path: `${API_PREFIX}/auth/register`,
      operationId: 'register',
      summary: 'Create an account',
      tag: 'auth',
      access: 'public',
      before: [credentialLimit],
      request: { body: RegisterBody.meta({ id: 'RegisterBody' }) },
      responses: {
        201: respond.json('The account.', RegisteredUser.meta({ id: 'RegisteredUser' })),
        400: respond.problem('Invalid email or a password outside the policy (12-256 characters).'),
        409: respond.problem('The email is taken.'),
        415: respond.problem('The body is not JSON.'),
        429: tooManyAttempts,
      },
      async handle({ body }, _req, res) {
        res.status(201).json(await auth.register(body));
      },
    }),
    endpoint({
      method: 'post',
      path: `${API_PREFIX}/auth/login`,
      operationId: 'login',
      summary: 'Exchange credentials for a short-lived access token',
      tag: 'auth',
      access: 'public',
      before: [credentialLimit],
      request: { body: LoginBody.meta({ id: 'LoginBody' }) },
      responses: {
        200: respond.json('A bearer access token.', AccessTokenResponse.meta({ id: 'AccessToken' })),
        400: respond.problem('Malformed credentials.'),
        401: respond.problem('Unknown email or wrong password (one answer for both).'),
        429: tooManyAttempts,
      },
      async handle({ body }, _req, res) {
        const token = await auth.login(body);
        res.setHeader('Cache-Control', 'no-store');
        res.json(token);
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
