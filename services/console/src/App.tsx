import { useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { CONSOLE_PAGES } from '../../contract/http';
import { asProblem, getMe, onSessionChange, onSignOutStatus, refreshSession, resumePendingSignOut, retrySignOut, signOut, signOutStatusNow, type ApiProblem, type CurrentUser } from './api';
import { PageTitle, ProblemAlert } from './components';
import { AdminPage } from './pages/AdminPage';
import { FilesPage } from './pages/FilesPage';
import { ForgotPasswordPage } from './pages/ForgotPasswordPage';
import { JobPage } from './pages/JobPage';
import { JobsPage } from './pages/JobsPage';
import { ResetPasswordPage } from './pages/ResetPasswordPage';
import { SignInPage } from './pages/SignInPage';
import { SubmitPage } from './pages/SubmitPage';
import { Link, navigate, useLocation } from './router';
import { forgetFiles } from './uploads';

/** `unknown`: restoring the session got no answer about it (rate limited, unavailable); it is tried again after the wait. */
type Session = { kind: 'loading' } | { kind: 'unknown'; problem: ApiProblem } | { kind: 'signed-out' } | { kind: 'signed-in'; user: CurrentUser };

/** How long to wait before trying to restore the session again when the API named no wait. */
const RESTORE_RETRY_SECONDS = 5;

/** Pages for someone not signed in; a signed-in visitor moves on to `next`. */
const SIGNED_OUT_PAGES: string[] = [CONSOLE_PAGES.signIn, CONSOLE_PAGES.register, CONSOLE_PAGES.forgotPassword];
const JOB_PAGE = new RegExp(`^${CONSOLE_PAGES.job}/([0-9a-fA-F-]{36})$`);

/**
 * Where to go after signing in: a page of this console, never another origin. Resolved the
 * way the browser resolves it, which reads `/\evil.example` as `//evil.example`.
 */
function safeNext(next: string | null): string {
  if (!next?.startsWith('/')) return CONSOLE_PAGES.jobs;
  const target = new URL(next, window.location.origin);
  return target.origin === window.location.origin ? target.pathname + target.search + target.hash : CONSOLE_PAGES.jobs;
}

export function App() {
  const location = useLocation();
  const [session, setSession] = useState<Session>({ kind: 'loading' });
  const firstRender = useRef(true);
  const path = location.pathname;
  const here = location.pathname + location.search;
  const next = location.searchParams.get('next');

  useEffect(() => {
    const loadUser = () =>
      getMe().then(
        (user) => setSession({ kind: 'signed-in', user }),
        () => setSession({ kind: 'signed-out' }),
      );
    const unsubscribe = onSessionChange((signedIn) => {
      if (signedIn) void loadUser();
      else {
        forgetFiles();
        setSession({ kind: 'signed-out' });
      }
    });
    // A reload keeps no token: the HttpOnly refresh cookie is what restores the session, unless it is one whose sign-out the API has not confirmed yet.
    let retry: ReturnType<typeof setTimeout> | undefined;
    const restore = () =>
      refreshSession().then(
        (restored) => {
          if (!restored) setSession({ kind: 'signed-out' });
        },
        (error: unknown) => {
          const problem = asProblem(error);
          setSession({ kind: 'unknown', problem });
          retry = setTimeout(restore, (problem.retryAfterSeconds ?? RESTORE_RETRY_SECONDS) * 1_000);
        },
      );
    if (resumePendingSignOut()) setSession({ kind: 'signed-out' });
    else void restore();
    return () => {
      unsubscribe();
      clearTimeout(retry);
    };
  }, []);

  const onSignedOutPage = SIGNED_OUT_PAGES.includes(path);
  // A reset link works whether or not this browser is signed in, and as whoever.
  const onResetPage = path === CONSOLE_PAGES.resetPassword;
  useEffect(() => {
    if (session.kind === 'signed-out' && !onSignedOutPage && !onResetPage) {
      navigate(here === CONSOLE_PAGES.jobs ? CONSOLE_PAGES.signIn : `${CONSOLE_PAGES.signIn}?next=${encodeURIComponent(here)}`, { replace: true });
    }
  }, [session.kind, onSignedOutPage, onResetPage, here]);

  useEffect(() => {
    if (session.kind === 'signed-in' && onSignedOutPage) navigate(safeNext(next), { replace: true });
  }, [session.kind, onSignedOutPage, next]);

  // A new page moves focus to its heading, as a page load would, so keyboard and screen reader users start there.
  useEffect(() => {
    if (firstRender.current) {
      firstRender.current = false;
      return;
    }
    document.getElementById('page-title')?.focus();
  }, [path, session.kind]);

  useEffect(() => {
    const title = document.getElementById('page-title')?.textContent;
    document.title = title ? `${title} · Platform Kit` : 'Platform Kit console';
  });

  const user = session.kind === 'signed-in' ? session.user : undefined;
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="site-header">
        <Link to={CONSOLE_PAGES.jobs} className="brand">
          Platform Kit
        </Link>
        {user ? (
          <nav aria-label="Main">
            <ul>
              <li>
                <Link to={CONSOLE_PAGES.jobs} aria-current={path === CONSOLE_PAGES.jobs ? 'page' : undefined}>
                  Jobs
                </Link>
              </li>
              <li>
                <Link to={CONSOLE_PAGES.submit} aria-current={path === CONSOLE_PAGES.submit ? 'page' : undefined}>
                  Submit
                </Link>
              </li>
              <li>
                <Link to={CONSOLE_PAGES.files} aria-current={path === CONSOLE_PAGES.files ? 'page' : undefined}>
                  Files
                </Link>
              </li>
              {user.role === 'admin' ? (
                <li>
                  <Link to={CONSOLE_PAGES.admin} aria-current={path === CONSOLE_PAGES.admin ? 'page' : undefined}>
                    Operations
                  </Link>
                </li>
              ) : null}
            </ul>
          </nav>
        ) : null}
        {user ? (
          <div className="account">
            <span className="email">{user.email}</span>
            <button type="button" className="secondary" onClick={signOut}>
              Sign out
            </button>
          </div>
        ) : null}
      </header>
      <main id="main" tabIndex={-1}>
        <SignOutNotice />
        <Page session={session} location={location} />
      </main>
    </>
  );
}

function Page({ session, location }: { session: Session; location: URL }) {
  const path = location.pathname;
  // Rendered whatever the session, even while it is still loading: the page must read its token and take it out of the address at once.
  if (path === CONSOLE_PAGES.resetPassword) return <ResetPasswordPage signedInAs={session.kind === 'signed-in' ? session.user.email : undefined} />;
  if (session.kind === 'loading') return <p>Loading…</p>;
  if (session.kind === 'unknown') {
    return (
      <section>
        <PageTitle>Your session could not be restored yet</PageTitle>
        <ProblemAlert problem={session.problem} />
        <p>The console tries again by itself.</p>
      </section>
    );
  }
  if (session.kind === 'signed-out') {
    if (path === CONSOLE_PAGES.forgotPassword) return <ForgotPasswordPage />;
    return <SignInPage mode={path === CONSOLE_PAGES.register ? 'register' : 'sign-in'} />;
  }
  if (path === CONSOLE_PAGES.jobs) return <JobsPage />;
  if (path === CONSOLE_PAGES.submit) return <SubmitPage initialType={location.searchParams.get('type')} initialFileId={location.searchParams.get('fileId')} />;
  if (path === CONSOLE_PAGES.files) return <FilesPage />;
  if (path === CONSOLE_PAGES.admin) {
    return session.user.role === 'admin' ? <AdminPage /> : <NotFound what="This page is for administrators." />;
  }
  const job = JOB_PAGE.exec(path);
  if (job?.[1]) return <JobPage key={job[1]} jobId={job[1]} />;
  if (SIGNED_OUT_PAGES.includes(path)) return <p>Signed in.</p>;
  return <NotFound what="There is no such page in the console." />;
}

/** Where a sign-out stands when the API has not confirmed it: the user must not believe the session ended before it has. */
function SignOutNotice() {
  const status = useSyncExternalStore(onSignOutStatus, signOutStatusNow);
  if (status.kind === 'confirmed') {
    return (
      <p className="notice" role="status">
        The server confirmed the sign-out: your session has ended.
      </p>
    );
  }
  if (status.kind !== 'pending' || !status.problem) return null;
  return (
    <div className="notice warning" role="alert">
      <p className="notice-title">Your session has not ended on the server yet</p>
      <p>
        This browser no longer uses it, but the API did not confirm the sign-out ({status.problem.title}). Until it does, the session could still be
        restored from this browser: do not leave this computer to someone else yet. The console keeps trying by itself, also the next time it opens
        here.
      </p>
      <button type="button" className="secondary" onClick={retrySignOut}>
        Try again now
      </button>
    </div>
  );
}

function NotFound({ what }: { what: string }) {
  return (
    <section>
      <PageTitle>Not found</PageTitle>
      <p>{what}</p>
      <p>
        <Link to={CONSOLE_PAGES.jobs}>Go to your jobs</Link>
      </p>
    </section>
  );
}
