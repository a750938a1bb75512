import { CommanderError } from 'commander';
import { EnvError } from '../contract';
import { ConflictError, DomainError, NotFoundError, ValidationError } from '../core/errors';
import { DependencyUnavailableError, UsageError, shownAsJson, shownAsText } from './output';

/**
 * Exit statuses, the same for every command (`platform --help` lists them):
 * 0 done or healthy; 1 failed, unhealthy, or done only in part; 2 bad usage or configuration
 * (nothing was changed, and nothing was connected to).
 */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** What went wrong, as `--json` prints it on standard error: `{"error": Failure}`. */
export interface Failure {
  /** usage, environment: nothing was done. not-found, conflict, unavailable, failed: the command ran and could not do it. */
  kind: 'usage' | 'environment' | 'not-found' | 'conflict' | 'unavailable' | 'failed';
  message: string;
  exitCode: number;
  /** With kind environment: the variables that are missing or bad (never their values). */
  variables?: string[];
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function describeFailure(error: unknown): Failure {
  if (error instanceof CommanderError) return { kind: 'usage', message: error.message.replace(/^error: /, ''), exitCode: EXIT.usage };
  if (error instanceof UsageError) return { kind: 'usage', message: error.message, exitCode: EXIT.usage };
  if (error instanceof EnvError) {
    const message = error.issues.map((issue) => `environment variable ${issue.variable} ${issue.message}`).join('; ');
    return { kind: 'environment', message, exitCode: EXIT.usage, variables: error.issues.map((issue) => issue.variable) };
  }
  // The core refused what the command was given (a password the policy refuses): bad usage, and nothing changed.
  if (error instanceof ValidationError) return { kind: 'usage', message: error.message, exitCode: EXIT.usage };
  if (error instanceof DependencyUnavailableError) return { kind: 'unavailable', message: error.message, exitCode: EXIT.failed };
  if (error instanceof NotFoundError) return { kind: 'not-found', message: error.message, exitCode: EXIT.failed };
  if (error instanceof ConflictError) return { kind: 'conflict', message: error.message, exitCode: EXIT.failed };
  if (error instanceof DomainError) return { kind: 'failed', message: error.message, exitCode: EXIT.failed };
  return { kind: 'failed', message: messageOf(error), exitCode: EXIT.failed };
}

/**
 * Says what went wrong on standard error, where a script reading standard output for the
 * answer does not take it for one: as `{"error": …}` with --json, as `platform: …` lines
 * otherwise. Returns the exit status.
 */
export function reportFailure(error: unknown, json: boolean): number {
  const failure = describeFailure(error);
  if (json) process.stderr.write(`${shownAsJson({ error: failure })}\n`);
  else if (failure.kind === 'environment' && error instanceof EnvError) {
    for (const issue of error.issues) process.stderr.write(`platform: environment variable ${issue.variable} ${issue.message}\n`);
  } else process.stderr.write(`platform: ${shownAsText(failure.message)}\n`);
  return failure.exitCode;
}
