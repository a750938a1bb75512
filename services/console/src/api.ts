/**
 * The console's HTTP client. The access token lives only in this module's memory (never
 * in localStorage or sessionStorage, where any script could read it); the refresh token
 * is an HttpOnly cookie the browser sends to /v1/auth/refresh, which is how a reload or a
 * token's expiry restores the session. A 401 that a refresh cannot cure means signed out;
 * a refresh refused for a while (429, 503) or not answered says nothing about the session.
 *
 * Only the API can end a session for good: it revokes the cookie's session and clears the
 * cookie, which no script here can touch. So a sign-out the API has not confirmed is owed,
 * not done: see "Signing out" below.
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
/** Counts sign-outs seen by this tab: a refresh answered after one must not bring the session back. */
let signOuts = 0;
const listeners = new Set<SessionListener>();

/**
 * The console's tabs in this browser share one session (the refresh cookie). A sign-out in one
 * tells the others, which forget their token at once instead of showing the account until
 * their next call.
 */
const SIGNED_OUT_MESSAGE = 'signed-out';
const otherTabs = typeof BroadcastChannel === 'undefined' ? undefined : new BroadcastChannel('platform-kit-session');
otherTabs?.addEventListener('message', (event: MessageEvent<unknown>) => {
  if (event.data === SIGNED_OUT_MESSAGE) signedOutElsewhere();
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

/** Apart from SESSION_LOCK (sign-out and sign-in): a refresh the API does not answer must not hold up a sign-out, which needs no refresh to be over (the session is the same, whichever of its cookies the logout carries). */
const REFRESH_LOCK = 'platform-kit-refresh';

/** A Web Lock shared by this browser's console tabs, where the browser offers Web Locks (secure contexts); elsewhere the task runs at once. */
async function withLock<T>(name: string, task: () => Promise<T>): Promise<T> {
  const locks = (navigator as Partial<Navigator>).locks;
  return locks ? await locks.request(name, task) : await task();
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
    const signOutsBefore = signOuts;
    const signedOutMeanwhile = () => signOuts !== signOutsBefore || signOutPending();
    try {
      if (signedOutMeanwhile()) {
        setToken(undefined);
        return false;
      }
      let response: Response;
      try {
        // One tab at a time, so each sends the cookie the previous refresh rotated in: two tabs
        // with the same cookie (a browser restoring its tabs) would look like a replayed token,
        // and the API would end the session. No timeout: a refresh the API answers after the
        // browser gave up on it has rotated the cookie the browser still holds.
        response = await withLock(REFRESH_LOCK, () => fetch('/v1/auth/refresh', { method: 'POST', credentials: 'same-origin', headers: { accept: 'application/json' } }));
      } catch (error) {
        throw asProblem(error);
      }
      if (response.status === 429 || response.status >= 500) throw await problemOf(response);
      const token = response.ok ? ((await response.json()) as AccessToken).accessToken : undefined;
      // The cookie this answer rotated belongs to the session being signed out: the pending logout ends it.
      if (!token || signedOutMeanwhile()) {
        setToken(undefined);
        return false;
      }
      setToken(token);
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

/**
 * A read refused for a moment, 429 or 503 with a Retry-After this short, is sent once more
 * after that wait rather than shown as an error: the API answers reads of job data 429 past
 * a few at once per user, which a handful of tabs opening jobs together can meet, and a second
 * look a second later is answered. Writes are never sent twice; a longer wait is shown.
 */
const READ_RETRY_MAX_SECONDS = 5;

/** Resolves after `ms`, or rejects with the signal's reason once it aborts (as fetch would). */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

/** The Retry-After of a 429 or 503 whose wait is short enough to wait out, else undefined. */
function briefRefusal(response: Response): number | undefined {
  if (response.status !== 429 && response.status !== 503) return undefined;
  const wait = retryAfterOf(response);
  return wait !== undefined && wait <= READ_RETRY_MAX_SECONDS ? wait : undefined;
}

/** A call with the bearer token; one refresh-and-retry on 401, one retry of a read briefly refused. Non-2xx answers throw ApiProblem. */
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
  const isRead = (options.method ?? 'GET') === 'GET' && options.body === undefined && options.json === undefined;
  const wait = isRead ? briefRefusal(response) : undefined;
  if (wait !== undefined) {
    void response.body?.cancel();
    await pause(wait * 1_000, options.signal);
    response = await send();
  }
  if (response.status === 401 && accessToken && (await refreshSession())) response = await send();
  if (response.status === 401) setToken(undefined);
  if (!response.ok) throw await problemOf(response);
  return response;
}

export async function apiJson<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const response = await apiFetch(path, options);
  return (response.status === 204 ? undefined : await response.json()) as T;
}

/**
 * Signs in, once an earlier sign-out of this browser is confirmed: the login's cookie would
 * replace the cookie of the session still owed a logout, which then could not be ended from
 * here, and the owed logout would end the new session instead.
 */
export async function signIn(email: string, password: string): Promise<void> {
  await withSessionLock(async () => {
    if (!(await settleOwedLogout())) throw PREVIOUS_SIGN_OUT_UNCONFIRMED;
    const token = await apiJson<AccessToken>('/v1/auth/login', { json: { email, password } });
    setSignOutStatus({ kind: 'none' });
    setToken(token.accessToken);
  });
}

export async function register(email: string, password: string): Promise<void> {
  // Before the account exists: a sign-in that cannot happen yet should not leave one behind unexplained.
  if (signOutPending() && !(await withSessionLock(settleOwedLogout))) throw PREVIOUS_SIGN_OUT_UNCONFIRMED;
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

/* Signing out.
 *
 * The console forgets the session at once, in every tab, and asks the API to log out. Until
 * the API confirms (204), a marker in localStorage says a logout is owed: every tab, a reload
 * and the next visit find it, refresh nothing while it is set, and keep asking, with backoff,
 * until the API answers. The marker holds no secret, only that a sign-out is owed. Where
 * localStorage is refused, the marker lasts as long as the page.
 *
 * Attempts, and a sign-in, run under one Web Lock across tabs (where the browser offers Web
 * Locks: secure contexts), so no tab sends an owed logout after another tab settled it and
 * signed in: that logout would carry the new session's cookie.
 */

export type SignOutStatus =
  | { kind: 'none' }
  /** The API has not confirmed the sign-out yet; `problem` says why the last attempt failed, absent while the first is under way. */
  | { kind: 'pending'; problem?: ApiProblem }
  /** The API confirmed a sign-out this tab had called unconfirmed (or found owed when it opened). */
  | { kind: 'confirmed' };

const SIGN_OUT_PENDING_KEY = 'platform-kit.sign-out-pending';
const SESSION_LOCK = 'platform-kit-session';
const SIGN_OUT_RETRY_FIRST_SECONDS = 2;
const SIGN_OUT_RETRY_MAX_SECONDS = 60;
/** An API that accepted the connection but does not answer (stopped, overloaded) must neither hold the session lock nor keep the user from hearing it. */
const LOGOUT_TIMEOUT_MS = 5_000;

/** What a sign-in (or registration) throws while an earlier sign-out is owed and the API still does not confirm it. */
export const PREVIOUS_SIGN_OUT_UNCONFIRMED = new ApiProblem(
  0,
  'The previous sign-out is not confirmed yet',
  'Signing in now would leave the previous session valid on the server. Try again when the API answers.',
);

let pendingHere = false;
let signOutStatus: SignOutStatus = { kind: 'none' };
/** Whether the user was told (or could have been) that the sign-out was not confirmed: then its confirmation is said too. */
let signOutAnnounced = false;
let signOutFailures = 0;
let signOutRetry: ReturnType<typeof setTimeout> | undefined;
let signOutAttempt: Promise<boolean> | undefined;
/** The access token of the session being signed out, in this tab's memory only: the logout also denies it. */
let endingToken: string | undefined;
const signOutListeners = new Set<() => void>();

function withSessionLock<T>(task: () => Promise<T>): Promise<T> {
  return withLock(SESSION_LOCK, task);
}

function signOutPending(): boolean {
  try {
    return pendingHere || localStorage.getItem(SIGN_OUT_PENDING_KEY) !== null;
  } catch {
    return pendingHere;
  }
}

function setSignOutPending(pending: boolean): void {
  pendingHere = pending;
  try {
    if (pending) localStorage.setItem(SIGN_OUT_PENDING_KEY, new Date().toISOString());
    else localStorage.removeItem(SIGN_OUT_PENDING_KEY);
  } catch {
    // Refused storage: the marker lives in this page only (pendingHere).
  }
}

function setSignOutStatus(status: SignOutStatus): void {
  signOutStatus = status;
  if (status.kind !== 'pending') signOutAnnounced = false;
  for (const listener of signOutListeners) listener();
}

function signOutSettled(): void {
  clearTimeout(signOutRetry);
  signOutFailures = 0;
  endingToken = undefined;
  if (signOutStatus.kind === 'pending') setSignOutStatus(signOutAnnounced ? { kind: 'confirmed' } : { kind: 'none' });
}

/** One logout request; undefined when the API confirmed it, else why not. */
async function requestLogout(): Promise<ApiProblem | undefined> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (endingToken) headers.authorization = `Bearer ${endingToken}`;
  try {
    const response = await fetch('/v1/auth/logout', { method: 'POST', credentials: 'same-origin', headers, signal: AbortSignal.timeout(LOGOUT_TIMEOUT_MS) });
    return response.ok ? undefined : await problemOf(response);
  } catch (error) {
    return asProblem(error);
  }
}

/** Asks the API once for an owed logout (under the session lock); true when none is owed any more. */
async function settleOwedLogout(): Promise<boolean> {
  if (!signOutPending()) {
    signOutSettled();
    return true;
  }
  clearTimeout(signOutRetry);
  const problem = await requestLogout();
  if (!problem) {
    setSignOutPending(false);
    signOutSettled();
    return true;
  }
  signOutFailures += 1;
  signOutAnnounced = true;
  setSignOutStatus({ kind: 'pending', problem });
  const backoff = Math.min(SIGN_OUT_RETRY_MAX_SECONDS, SIGN_OUT_RETRY_FIRST_SECONDS * 2 ** (signOutFailures - 1));
  signOutRetry = setTimeout(continueSignOut, Math.max(problem.retryAfterSeconds ?? 0, backoff) * 1_000);
  return false;
}

function continueSignOut(): void {
  if (signOutStatus.kind !== 'pending') setSignOutStatus({ kind: 'pending' });
  signOutAttempt ??= withSessionLock(settleOwedLogout).finally(() => {
    signOutAttempt = undefined;
  });
}

/** Asks the API again now for a sign-out it has not confirmed yet (a button, the browser coming back online). */
export function retrySignOut(): void {
  if (signOutPending()) continueSignOut();
}

/**
 * For a console that opens: when this browser still owes a sign-out, resumes asking the API
 * for it and answers true, and then there is no session to restore.
 */
export function resumePendingSignOut(): boolean {
  if (!signOutPending()) return false;
  signOutAnnounced = true;
  continueSignOut();
  return true;
}

/** Ends the session: forgotten here and in every tab at once; the API is asked until it confirms (signOutStatus says how far). */
export function signOut(): void {
  setSignOutPending(true);
  signOuts += 1;
  endingToken = accessToken;
  setToken(undefined);
  otherTabs?.postMessage(SIGNED_OUT_MESSAGE);
  continueSignOut();
}

export function signOutStatusNow(): SignOutStatus {
  return signOutStatus;
}

export function onSignOutStatus(listener: () => void): () => void {
  signOutListeners.add(listener);
  return () => signOutListeners.delete(listener);
}

/** Another tab signed out: told by its message, or by the marker it set, whichever arrives first. */
function signedOutElsewhere(): void {
  signOuts += 1;
  setToken(undefined);
  if (signOutPending()) continueSignOut();
}

window.addEventListener('storage', (event) => {
  if (event.key !== SIGN_OUT_PENDING_KEY) return;
  if (event.newValue !== null) {
    signedOutElsewhere();
    return;
  }
  // Removed: the API confirmed the sign-out to another tab (or before its sign-in); the cookie it sent is this tab's too.
  pendingHere = false;
  signOutSettled();
});
window.addEventListener('online', retrySignOut);

export function getMe(): Promise<CurrentUser> {
  return apiJson<CurrentUser>('/v1/auth/me');
}

/** A message for anything a call threw: the problem as the API stated it, or what went wrong on the way. */
export function asProblem(error: unknown): ApiProblem {
  if (error instanceof ApiProblem) return error;
  return new ApiProblem(0, 'The API could not be reached', error instanceof Error ? error.message : String(error));
}
