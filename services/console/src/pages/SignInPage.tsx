import { useState, useSyncExternalStore, type FormEvent } from 'react';
import { CONSOLE_PAGES } from '../../../contract/http';
import { asProblem, onSignOutStatus, PREVIOUS_SIGN_OUT_UNCONFIRMED, register, signIn, signOutStatusNow, type ApiProblem } from '../api';
import { PageTitle, PasswordHint, ProblemAlert } from '../components';
import { Link } from '../router';

/** Sign in, or (mode "register") create an account and sign in with it. */
export function SignInPage({ mode }: { mode: 'sign-in' | 'register' }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<ApiProblem>();
  const registering = mode === 'register';
  const signOutStatus = useSyncExternalStore(onSignOutStatus, signOutStatusNow);
  // Once the API confirmed the earlier sign-out, the form works again: the refusal would contradict the notice above it.
  const shownProblem = problem === PREVIOUS_SIGN_OUT_UNCONFIRMED && signOutStatus.kind !== 'pending' ? undefined : problem;

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setProblem(undefined);
    try {
      // Once signed in, the app leaves this page for `next` (App.tsx).
      await (registering ? register(email, password) : signIn(email, password));
    } catch (error) {
      setProblem(asProblem(error));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="narrow">
      <PageTitle>{registering ? 'Create an account' : 'Sign in'}</PageTitle>
      <ProblemAlert problem={shownProblem} />
      <form onSubmit={onSubmit} className="stack">
        <label htmlFor="email">Email</label>
        <input id="email" type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        <label htmlFor="password">Password</label>
        <input
          id="password"
          type="password"
          autoComplete={registering ? 'new-password' : 'current-password'}
          required
          aria-describedby={registering ? 'password-hint' : undefined}
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
        {registering ? <PasswordHint id="password-hint" /> : null}
        <button type="submit" disabled={busy}>
          {registering ? 'Create account' : 'Sign in'}
        </button>
      </form>
      <p>
        {registering ? (
          <>
            Have an account? <Link to={CONSOLE_PAGES.signIn}>Sign in</Link>
          </>
        ) : (
          <>
            New here? <Link to={CONSOLE_PAGES.register}>Create an account</Link>
          </>
        )}
      </p>
      {registering ? null : (
        <p>
          <Link to={CONSOLE_PAGES.forgotPassword}>Forgot your password?</Link>
        </p>
      )}
    </section>
  );
}
