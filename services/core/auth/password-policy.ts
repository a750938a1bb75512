import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repositoryRoot } from '../db/migrate';

export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 256;

let common: Set<string> | undefined;

/** The shipped list (services/core/auth/common-passwords.txt), read once, lower-cased. */
function commonPasswords(): Set<string> {
  if (!common) {
    const file = path.join(repositoryRoot(), 'services', 'core', 'auth', 'common-passwords.txt');
    const lines = readFileSync(file, 'utf8').split('\n');
    common = new Set(lines.filter((line) => line && !line.startsWith('#')).map((line) => line.trim().toLowerCase()));
  }
  return common;
}

/**
 * Why a new password is refused, or undefined when it is acceptable: the length policy
 * (NIST SP 800-63B: length, not composition rules) and a list of common passwords.
 */
export function passwordProblem(password: string): string | undefined {
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH) return `must be at least ${PASSWORD_MIN_LENGTH} characters`;
  if (length > PASSWORD_MAX_LENGTH) return `must be at most ${PASSWORD_MAX_LENGTH} characters`;
  if (commonPasswords().has(password.toLowerCase())) return 'is one of the most common passwords; choose another';
  return undefined;
}
