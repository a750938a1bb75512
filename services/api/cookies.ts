import { parse, serialize } from 'cookie';
import type { Request, Response } from 'express';
import { API_PREFIX } from '../contract';

/** The refresh token's cookie: sent back only to the auth routes, never readable by scripts. */
export const REFRESH_COOKIE = 'pk_refresh';
export const REFRESH_COOKIE_PATH = `${API_PREFIX}/auth`;

export function readRefreshCookie(req: Request): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  const value = parse(header)[REFRESH_COOKIE];
  return value && /^[A-Za-z0-9_-]{43}$/.test(value) ? value : undefined;
}

export function setRefreshCookie(res: Response, token: string, expiresAt: Date, secure: boolean): void {
  res.append(
    'Set-Cookie',
    serialize(REFRESH_COOKIE, token, { httpOnly: true, secure, sameSite: 'strict', path: REFRESH_COOKIE_PATH, expires: expiresAt }),
  );
}

export function clearRefreshCookie(res: Response, secure: boolean): void {
  res.append('Set-Cookie', serialize(REFRESH_COOKIE, '', { httpOnly: true, secure, sameSite: 'strict', path: REFRESH_COOKIE_PATH, expires: new Date(0) }));
}
