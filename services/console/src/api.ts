/**
 * The console's HTTP client. The access token lives only in this module's memory (never
 * in localStorage or sessionStorage, where any script could read it); the refresh token
 * is an HttpOnly cookie the browser sends to /v1/auth/refresh, which is how a reload or a
 * token's expiry restores the session. A 401 that a refresh cannot cure means signed out;
 * a refresh refused for a while (429, 503) or not answered says nothing about the session.
 */

export interface ProblemField {
  field: string;
  message: string;
}

/** An API error as RFC 9457 describes it: what the console shows is its title and detail. */
export class ApiProblem extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string | undefined;
  readonly errors: ProblemField[];
  /** From the Retry-After header of a 429 or 503: the problem's detail can only point at the header, which a person never sees. */
  readonly retryAfterSeconds: number | undefined;

  constructor(status: number, title: string, detail?: string, errors: ProblemField[] = [], retryAfterSeconds?: number) {
    super(detail ? `${title}: ${detail}` : title);
    this.name = this.constructor.name;
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.errors = errors;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** Retry-After in seconds; the API sends whole seconds, never an HTTP date. */
function retryAfterOf(response: Response): number | undefined {
  const value = response.headers.get('retry-after');
  return value && /^\d+$/.test(value) ? Number(value) : undefined;
}

export interface AccessToken {
  accessToken: string;
  tokenType: string;
  expiresIn: number;
}

export interface CurrentUser {
  id: string;
  email: string;
  role: string;
}

type SessionListener = (signedIn: boolean) => void;

let accessToken: string | undefined;
let refreshing: Promise<boolean> | undefined;
const listeners = new Set<SessionListener>();

/**
 * The console's tabs in this browser share one session (the refresh cookie). A sign-out in one
 * tells the others, which forget their token at once instead of showing the account until
 * their next call.
 */
const SIGNED_OUT_MESSAGE = 'signed-out';
const otherTabs = typeof BroadcastChannel === 'undefined' ? undefined : new BroadcastChannel('platform-kit-session');
otherTabs?.addEventListener('message', (event: MessageEvent<unknown>) => {
  if (event.data === SIGNED_OUT_MESSAGE) setToken(undefined);
});

export function onSessionChange(listener: SessionListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function setToken(token: string | undefined): void {
  const changed = Boolean(token) !== Boolean(accessToken);
  accessToken = token;
  if (changed) for (const listener of listeners) listener(Boolean(token));
}

async function problemOf(response: Response): Promise<ApiProblem> {
  const text = await response.text().catch(() => '');
  const retryAfter = retryAfterOf(response);
  try {
    const body = JSON.parse(text) as { title?: unknown; detail?: unknown; errors?: unknown };
    const errors = Array.isArray(body.errors)
      ? body.errors.filter((e): e is ProblemField => typeof e === 'object' && e !== null && typeof e.field === 'string' && typeof e.message === 'string')
      : [];
    return new ApiProblem(response.status, typeof body.title === 'string' ? body.title : response.statusText || `HTTP ${response.status}`, typeof body.detail === 'string' ? body.detail : undefined, errors, retryAfter);
  } catch {
    return new ApiProblem(response.status, response.statusText || `HTTP ${response.status}`, text.slice(0, 200) || undefined, [], retryAfter);
  }
}

/**
 * Asks for a new access token with the refresh cookie. One refresh at a time: every
 * caller that met a 401 meanwhile waits for the same answer. False means signed out (the
 * API refused the cookie); an ApiProblem is thrown when the answer was no answer about the
 * session (rate limited, unavailable, unreachable): the session stands as it was, and the
 * caller shows the problem and tries again later.
 */
export function refreshSession(): Promise<boolean> {
  refreshing ??= (async () => {
    try {
      let response: Response;
      try {
        response = await fetch('/v1/auth/refresh', { method: 'POST', credentials: 'same-origin', headers: { accept: 'application/json' } });
      } catch (error) {
        throw asProblem(error);
      }
      if (response.status === 429 || response.status >= 500) throw await problemOf(response);
      if (!response.ok) {
        setToken(undefined);
        return false;
      }
      setToken(((await response.json()) as AccessToken).accessToken);
      return true;
    } finally {
      refreshing = undefined;
    }
  })();
  return refreshing;
}

export interface RequestOptions {
  method?: string;
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** A call with the bearer token; one refresh-and-retry on 401. Non-2xx answers throw ApiProblem. */
export async function apiFetch(path: string, options: RequestOptions = {}): Promise<Response> {
  const send = () => {
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    if (accessToken) headers.authorization = `Bearer ${accessToken}`;
    let body = options.body;
    if (options.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.json);
    }
    return fetch(path, { method: options.method ?? (body === undefined ? 'GET' : 'POST'), headers, body, signal: options.signal, credentials: 'same-origin' });
  };
  let response = await send();
  if (response.status === 401 && accessToken && (await refreshSession())) response = await send();
  if (response.status === 401) setToken(undefined);
  if (!response.ok) throw await problemOf(response);
  return response;
}

export async function apiJson<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const response = await apiFetch(path, options);
  return (response.status === 204 ? undefined : await response.json()) as T;
}

export async function signIn(email: string, password: string): Promise<void> {
  const token = await apiJson<AccessToken>('/v1/auth/login', { json: { email, password } });
  setToken(token.accessToken);
}

export async function register(email: string, password: string): Promise<void> {
  await apiJson('/v1/auth/register', { json: { email, password } });
  await signIn(email, password);
}

/** Asks for a reset mail. The API answers 202 whether or not the address has an account, so this never tells either. */
export async function requestPasswordReset(email: string): Promise<void> {
  await apiFetch('/v1/auth/password-reset', { json: { email } });
}

/** Sets a new password with the token from the reset mail; the API ends every session of the account. */
export async function confirmPasswordReset(token: string, password: string): Promise<void> {
  await apiFetch('/v1/auth/password-reset/confirm', { json: { token, password } });
}

/** Revokes the session on the server (access token and refresh family); the console forgets it whatever the answer, in every tab. */
export async function signOut(): Promise<void> {
  try {
    await apiFetch('/v1/auth/logout', { method: 'POST' });
  } finally {
    setToken(undefined);
    otherTabs?.postMessage(SIGNED_OUT_MESSAGE);
  }
}

export function getMe(): Promise<CurrentUser> {
  return apiJson<CurrentUser>('/v1/auth/me');
}

/** A message for anything a call threw: the problem as the API stated it, or what went wrong on the way. */
export function asProblem(error: unknown): ApiProblem {
  if (error instanceof ApiProblem) return error;
  return new ApiProblem(0, 'The API could not be reached', error instanceof Error ? error.message : String(error));
}
