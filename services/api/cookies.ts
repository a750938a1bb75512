import { parse, serialize } from 'cookie';
import type { Request, Response } from 'express';
import { API_PREFIX } from '../contract';

/**
 * The refresh token's cookie, HttpOnly and SameSite=Strict, in one of two forms:
 * - Secure (COOKIE_SECURE, every deployment): `__Host-pk_refresh`, Path=/. The prefix makes
 *   browsers take the cookie only when it is Secure, set by this very host over HTTPS and
 *   for no Domain, so a sibling subdomain cannot plant a refresh token of its own (signing
 *   the user into an account of its choosing) or shadow the real one with a narrower Path.
 *   The prefix demands Path=/: the cookie then also travels with the API's other
 *   requests, where nothing reads it and the request log redacts it.
 * - not Secure (COOKIE_SECURE=false, the local run over http://): `pk_refresh`, sent back
 *   only to the auth routes. Browsers refuse a `__Host-` cookie that is not Secure, and a
 *   Secure one is not sent over plain HTTP to a host other than localhost.
 */
export interface RefreshCookie {
  name: string;
  path: string;
  secure: boolean;
}

export const SECURE_REFRESH_COOKIE: RefreshCookie = { name: '__Host-pk_refresh', path: '/', secure: true };
export const PLAIN_HTTP_REFRESH_COOKIE: RefreshCookie = { name: 'pk_refresh', path: `${API_PREFIX}/auth`, secure: false };

export function refreshCookieFor(cookieSecure: boolean): RefreshCookie {
  return cookieSecure ? SECURE_REFRESH_COOKIE : PLAIN_HTTP_REFRESH_COOKIE;
}

/** The refresh token the request carries under the cookie's name; a cookie of any other name (another form's) is not read. */
export function readRefreshCookie(req: Request, cookie: RefreshCookie): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  const value = parse(header)[cookie.name];
  return value && /^[A-Za-z0-9_-]{43}$/.test(value) ? value : undefined;
}

export function setRefreshCookie(res: Response, cookie: RefreshCookie, token: string, expiresAt: Date): void {
  res.append('Set-Cookie', serialize(cookie.name, token, { httpOnly: true, secure: cookie.secure, sameSite: 'strict', path: cookie.path, expires: expiresAt }));
}

export function clearRefreshCookie(res: Response, cookie: RefreshCookie): void {
  res.append('Set-Cookie', serialize(cookie.name, '', { httpOnly: true, secure: cookie.secure, sameSite: 'strict', path: cookie.path, expires: new Date(0) }));
}
