import { useEffect, useRef, useState, type FormEvent } from 'react';
import { CONSOLE_PAGES } from '../../../contract/http';
import { ApiProblem, asProblem, confirmPasswordReset, refreshSession } from '../api';
import { PageTitle, PasswordHint, ProblemAlert } from '../components';
import { Link } from '../router';
import { PasswordResetRequestForm } from './ForgotPasswordPage';

/**
 * The token the reset mail's link carries in the fragment (`/reset#token=…`). A fragment
 * never travels to a server, so the token reaches no access log, proxy or Referer header.
 */
function tokenFromFragment(): string | undefined {
  return fragmentParameters().get('token') || undefined;
}

function fragmentParameters(): URLSearchParams {
  return new URLSearchParams(window.location.hash.slice(1));
}

/** What the API's field errors of a confirmation say about the two things this page sends. */
function fieldErrors(problem: ApiProblem): { password?: string; token: boolean } {
  return {
    password: problem.errors.find((error) => error.field === 'body.password')?.message,
    token: problem.errors.some((error) => error.field === 'body.token'),
  };
}

const DEAD_LINK = new ApiProblem(
  400,
  'This reset link does not work any more',
  'It was used already, a newer reset mail replaced it, or it expired. Ask for a new mail below and use the link in it.',
);

/**
 * Where the reset mail's link lands: sets a new password with the token it carries. The link
 * may be another account's than the one signed in here (`signedInAs`), so opening it signs
 * nobody out, and after the reset only a session the API ended is dropped.
 */
export function ResetPasswordPage({ signedInAs }: { signedInAs: string | undefined }) {
  // Read on the first render only: the effect below takes the token out of the address.
  const [token] = useState(tokenFromFragment);
  const [password, setPassword] = useState('');
  const [again, setAgain] = useState('');
  const [mismatch, setMismatch] = useState(false);
  const [passwordError, setPasswordError] = useState<string>();
  const [deadLink, setDeadLink] = useState(false);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<ApiProblem>();
  const [done, setDone] = useState(false);
  const passwordRef = useRef<HTMLInputElement>(null);
  const againRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    // Out of the address bar and the history entry, so a screenshot, a shared screen or the
    // back button shows no usable token; the page keeps it in memory only.
    if (fragmentParameters().has('token')) {
      window.history.replaceState(window.history.state, '', window.location.pathname + window.location.search);
    }
  }, []);

  useEffect(() => {
    if (done) document.getElementById('page-title')?.focus();
  }, [done]);

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    if (!token) return;
    if (password !== again) {
      setMismatch(true);
      againRef.current?.focus();
      return;
    }
    setMismatch(false);
    setPasswordError(undefined);
    setBusy(true);
    setProblem(undefined);
    try {
      await confirmPasswordReset(token, password);
      // The API ended every session of the link's account, which may or may not be this browser's
      // (or the one a reload is still restoring): a refresh asks. A refused cookie signs this
      // console out; no answer leaves the session as it is, for its next call to find out.
      await refreshSession().catch(() => undefined);
      setDone(true);
    } catch (error) {
      const failure = asProblem(error);
      const fields = fieldErrors(failure);
      if (fields.token) {
        // No password can make this token work again: the way on is a new mail.
        setDeadLink(true);
        setProblem(DEAD_LINK);
      } else if (fields.password) {
        // Said at the field, which takes focus: a screen reader reads its label, the policy and what is wrong.
        setPasswordError(fields.password);
        passwordRef.current?.focus();
      } else {
        setProblem(failure);
      }
    } finally {
      setBusy(false);
    }
  };

  if (!token) {
    return (
      <section className="narrow">
        <PageTitle>Incomplete reset link</PageTitle>
        <p>
          This link carries no reset token. Open the whole link from the reset mail (a mail program may have broken it across lines), or ask for a
          new mail:
        </p>
        <PasswordResetRequestForm />
        <p>
          <Link to={CONSOLE_PAGES.signIn}>Back to sign in</Link>
        </p>
      </section>
    );
  }

  if (done && signedInAs) {
    return (
      <section className="narrow">
        <PageTitle>Password changed</PageTitle>
        <p>The new password is set, and every session of the account the link was for has ended.</p>
        <p>This browser is still signed in as {signedInAs}: the reset did not end that session.</p>
        <p>
          <Link to={CONSOLE_PAGES.jobs}>Go to your jobs</Link>
        </p>
      </section>
    );
  }

  if (done) {
    return (
      <section className="narrow">
        <PageTitle>Password changed</PageTitle>
        <p>Your new password is set, and every session of your account has ended. Sign in with the new password.</p>
        <p>
          <Link to={CONSOLE_PAGES.signIn} className="button">
            Sign in
          </Link>
        </p>
      </section>
    );
  }

  if (deadLink) {
    return (
      <section className="narrow">
        <PageTitle>Set a new password</PageTitle>
        <ProblemAlert problem={problem} />
        <PasswordResetRequestForm />
        <p>
          <Link to={CONSOLE_PAGES.signIn}>Back to sign in</Link>
        </p>
      </section>
    );
  }

  return (
    <section className="narrow">
      <PageTitle>Set a new password</PageTitle>
      <ProblemAlert problem={problem} />
      <form onSubmit={onSubmit} className="stack">
        <label htmlFor="new-password">New password</label>
        <input
          id="new-password"
          ref={passwordRef}
          type="password"
          autoComplete="new-password"
          required
          aria-invalid={passwordError ? true : undefined}
          aria-describedby={passwordError ? 'password-hint new-password-error' : 'password-hint'}
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
        <PasswordHint id="password-hint" />
        {passwordError ? (
          <p id="new-password-error" className="field-error">
            New password {passwordError}
          </p>
        ) : null}
        <label htmlFor="new-password-again">New password again</label>
        <input
          id="new-password-again"
          ref={againRef}
          type="password"
          autoComplete="new-password"
          required
          aria-invalid={mismatch || undefined}
          aria-describedby={mismatch ? 'mismatch-error' : undefined}
          value={again}
          onChange={(e) => setAgain(e.target.value)}
        />
        {mismatch ? (
          <p id="mismatch-error" className="field-error">
            The two passwords differ: type the same new password in both fields.
          </p>
        ) : null}
        <button type="submit" disabled={busy}>
          Set new password
        </button>
      </form>
      <p>
        Link used or expired? <Link to={CONSOLE_PAGES.forgotPassword}>Ask for a new one</Link>
      </p>
    </section>
  );
}
