import { Router, type RequestHandler } from 'express';
import { API_PREFIX } from '../../contract';
import { LoginBody, RegisterBody, type AuthService } from '../../core/auth';
import { callerId } from '../middleware/authenticate';
import { parseOrThrow } from '../validation';

export interface AuthRoutesOptions {
  auth: AuthService;
  json: RequestHandler;
  authenticated: RequestHandler;
  /** Per-IP limit on the endpoints that take a password. */
  credentialLimit: RequestHandler;
}

export function authRoutes({ auth, json, authenticated, credentialLimit }: AuthRoutesOptions): Router {
  const router = Router();

  router.post(`${API_PREFIX}/auth/register`, credentialLimit, json, async (req, res) => {
    const user = await auth.register(parseOrThrow(RegisterBody, req.body, 'registration', 'body'));
    res.status(201).json(user);
  });

  router.post(`${API_PREFIX}/auth/login`, credentialLimit, json, async (req, res) => {
    const token = await auth.login(parseOrThrow(LoginBody, req.body, 'credentials', 'body'));
    res.setHeader('Cache-Control', 'no-store');
    res.json(token);
  });

  router.get(`${API_PREFIX}/auth/me`, authenticated, async (req, res) => {
    res.json(await auth.me(callerId(req)));
  });

  return router;
}
