import { useState, type FormEvent } from 'react';
import { CONSOLE_PAGES } from '../../../contract/http';
import { asProblem, requestPasswordReset, type ApiProblem } from '../api';
import { PageTitle, ProblemAlert } from '../components';
import { Link } from '../router';

/** "Forgot your password?": asks for a mail with a link to set a new one. */
export function ForgotPasswordPage() {
  return (
    <section className="narrow">
      <PageTitle>Reset your password</PageTitle>
      <p>Enter the email address of your account, and we will mail you a link to set a new password.</p>
      <PasswordResetRequestForm />
      <p>
        Remembered it? <Link to={CONSOLE_PAGES.signIn}>Sign in</Link>
      </p>
    </section>
  );
}

/**
 * The request for a reset mail. The API answers alike whether or not the address has an
 * account, and so does this form: it never tells anyone which addresses are registered.
 */
export function PasswordResetRequestForm() {
  const [email, setEmail] = useState('');
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<ApiProblem>();
  const [requestedFor, setRequestedFor] = useState<string>();

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setProblem(undefined);
    setRequestedFor(undefined);
    try {
      await requestPasswordReset(email);
      setRequestedFor(email);
    } catch (error) {
      setProblem(asProblem(error));
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <ProblemAlert problem={problem} />
      <form onSubmit={onSubmit} className="stack">
        <label htmlFor="reset-email">Email</label>
        <input id="reset-email" type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        <button type="submit" disabled={busy}>
          Send reset link
        </button>
      </form>
      {/* Always in the page, so screen readers announce the message when it appears. */}
      <p role="status">
        {requestedFor
          ? `If an account exists for ${requestedFor}, a mail with a link to set a new password is on its way. The link works once, for a limited time; a newer mail replaces it.`
          : null}
      </p>
    </>
  );
}
