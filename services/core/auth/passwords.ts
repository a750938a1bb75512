import { randomBytes } from 'node:crypto';
import argon2 from 'argon2';

/**
 * argon2id with OWASP's baseline (19 MiB, 2 passes, 1 lane). The encoded hash records the
 * parameters it was made with (`$argon2id$v=19$m=…,t=…,p=…$…`), so they can be raised here
 * later: a login with an older hash rehashes it (needsRehash). The native binding hashes
 * on libuv's thread pool, so a login never blocks the event loop.
 */
export const HASH_OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, HASH_OPTIONS);
}

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, password);
  } catch {
    // A malformed stored hash is a failed login, not a 500 that tells the caller the account exists.
    return false;
  }
}

/** Whether a stored hash was made with other parameters than today's (so it is rehashed at the next login). */
export function needsRehash(hash: string): boolean {
  try {
    return argon2.needsRehash(hash, HASH_OPTIONS);
  } catch {
    return false;
  }
}

/**
 * A hash to verify against when the account does not exist, so a login for an unknown
 * email costs the same argon2 work as one with a wrong password and timing does not
 * reveal which accounts exist. Computed once per process, on first use.
 */
export function createDummyHash(): () => Promise<string> {
  let hash: Promise<string> | undefined;
  return () => (hash ??= hashPassword(randomBytes(32).toString('base64url')));
}
