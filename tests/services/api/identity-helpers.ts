import { randomUUID } from 'node:crypto';
import { importJWK, SignJWT, type JWTPayload } from 'jose';
import { SECURE_REFRESH_COOKIE, type RefreshCookie } from '../../../services/api/cookies';
import { ACCESS_TOKEN_AUDIENCE, unsealPrivateKey } from '../../../services/core/auth';
import { call, type ApiFixture } from './fixture';

/** The stack's current signing key, unsealed from signing_keys with the fixture's KEY_ENCRYPTION_SECRET. */
export async function currentSigningKey(api: ApiFixture): Promise<{ kid: string; key: Awaited<ReturnType<typeof importJWK>> }> {
  const { rows } = await api.db.query<{ kid: string; sealed_private: string }>('SELECT kid, sealed_private FROM signing_keys ORDER BY created_at DESC LIMIT 1');
  const row = rows[0];
  if (!row) throw new Error('no signing key');
  return { kid: row.kid, key: await importJWK(unsealPrivateKey(api.env.KEY_ENCRYPTION_SECRET, row.kid, row.sealed_private), 'EdDSA') };
}

/** A token signed with the stack's own key, with claims a test may bend (expired, another audience, …). */
export async function signedToken(api: ApiFixture, claims: { userId: string; sessionId?: string; role?: string; expiresAt?: number; audience?: string; issuer?: string; kid?: string; extra?: JWTPayload }): Promise<string> {
  const { kid, key } = await currentSigningKey(api);
  const now = Math.floor(Date.now() / 1000);
  const expiresAt = claims.expiresAt ?? now + 300;
  return new SignJWT({ role: claims.role ?? 'user', sid: claims.sessionId ?? randomUUID(), ...claims.extra })
    .setProtectedHeader({ alg: 'EdDSA', kid: claims.kid ?? kid, typ: 'JWT' })
    .setSubject(claims.userId)
    .setIssuer(claims.issuer ?? api.env.JWT_ISSUER)
    .setAudience(claims.audience ?? ACCESS_TOKEN_AUDIENCE)
    .setIssuedAt(Math.min(now, expiresAt - 60))
    .setExpirationTime(expiresAt)
    .setJti(randomUUID())
    .sign(key);
}

/** The refresh cookie as a client sends it back: the form of a fixture's API, whose COOKIE_SECURE is true unless a test says otherwise. */
export function refreshCookieHeader(refreshToken: string, form: RefreshCookie = SECURE_REFRESH_COOKIE): string {
  return `${form.name}=${refreshToken}`;
}

/** The value of the refresh cookie a response set, with its attributes. */
export function refreshCookie(headers: Headers, form: RefreshCookie = SECURE_REFRESH_COOKIE): { value: string; attributes: string } | undefined {
  const header = headers.getSetCookie().find((cookie) => cookie.startsWith(`${form.name}=`));
  if (!header) return undefined;
  const [pair, ...attributes] = header.split(';');
  return { value: (pair ?? '').slice(form.name.length + 1), attributes: attributes.join(';').trim() };
}

/** Logs in; returns the access token and the refresh cookie's value. */
export async function login(api: Pick<ApiFixture, 'baseUrl'>, email: string, password: string): Promise<{ accessToken: string; refresh: string }> {
  const response = await call<{ accessToken: string }>(api, '/v1/auth/login', { json: { email, password } });
  if (response.status !== 200) throw new Error(`login failed: ${response.status} ${response.text}`);
  const cookie = refreshCookie(response.headers);
  if (!cookie) throw new Error('login set no refresh cookie');
  return { accessToken: response.body.accessToken, refresh: cookie.value };
}

export function refresh(api: Pick<ApiFixture, 'baseUrl'>, refreshToken: string) {
  return call<{ accessToken: string }>(api, '/v1/auth/refresh', { method: 'POST', headers: { cookie: refreshCookieHeader(refreshToken) } });
}
