import { useEffect, useRef, type ReactNode } from 'react';
import type { ApiProblem } from './api';
import { detailBesideWait } from './problem-detail';

/**
 * An API error as the problem document states it: its title, its detail, and the fields at
 * fault. When the answer names a wait (429, 503 with Retry-After), the console says the wait
 * in its own words, and the detail keeps only what it says beyond the wait (see
 * detailBesideWait).
 */
export function ProblemAlert({ problem }: { problem: ApiProblem | undefined }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (problem) ref.current?.focus();
  }, [problem]);
  if (!problem) return null;
  const waitSeconds = problem.retryAfterSeconds;
  const detail = problem.detail && waitSeconds !== undefined ? detailBesideWait(problem.detail) : problem.detail;
  return (
    <div className="problem" role="alert" tabIndex={-1} ref={ref}>
      <p className="problem-title">{problem.title}</p>
      {detail ? <p className="problem-detail">{detail}</p> : null}
      {waitSeconds !== undefined ? <p className="problem-retry">Try again in {formatWait(waitSeconds)}.</p> : null}
      {problem.errors.length > 0 ? (
        <ul>
          {problem.errors.map((error) => (
            <li key={`${error.field}:${error.message}`}>
              <code>{error.field}</code> {error.message}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

/** The page's heading; navigation moves focus here (App), so a screen reader announces the new page. */
export function PageTitle({ children }: { children: ReactNode }) {
  return (
    <h1 id="page-title" tabIndex={-1}>
      {children}
    </h1>
  );
}

/** The API's password policy (services/core/auth/password-policy.ts) in words, under every field that sets a password. */
export function PasswordHint({ id }: { id: string }) {
  return (
    <p id={id} className="hint">
      12 to 256 characters, not a common password.
    </p>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span className={`status status-${status}`}>{status}</span>;
}

export function ProgressBar({ value, label }: { value: number; label: string }) {
  return (
    <div className="progress">
      <progress max={100} value={value} aria-label={label} />
      <span>{Math.round(value)} %</span>
    </div>
  );
}

/** Bidi marks, embeddings, overrides and isolates: JSON.stringify leaves them raw, and raw they reorder the text around them. */
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** A value as JSON, with bidi controls written as escapes (still the same JSON), so `"a\u202ebc"` cannot show as `"acb"`. */
export function JsonBlock({ value, label }: { value: unknown; label: string }) {
  const text = JSON.stringify(value, null, 2).replace(BIDI_CONTROLS, (control) => `\\u${control.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return (
    <pre className="json" aria-label={label} tabIndex={0}>
      {text}
    </pre>
  );
}

export function formatBytes(size: number): string {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB`;
  return `${(size / 1024 / 1024).toFixed(1)} MiB`;
}

/** A wait as a person reads it: seconds under a minute, whole minutes (rounded up) beyond. */
export function formatWait(seconds: number): string {
  if (seconds < 60) return seconds === 1 ? '1 second' : `${seconds} seconds`;
  const minutes = Math.ceil(seconds / 60);
  return minutes === 1 ? '1 minute' : `${minutes} minutes`;
}

export function formatTime(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : '—';
}

/** Enough of an id to tell jobs and files apart on screen: ids are time-ordered (UUIDv7), so their heads repeat and their tails differ. */
export function shortId(id: string): string {
  return id.slice(-8);
}
