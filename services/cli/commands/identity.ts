import os from 'node:os';
import { EnvError, EnvSchema, parseEnv } from '../../contract';
import { AccountChangeReason, Email, KEY_REFRESH_MS, SigningKeyStore, UserRoleSchema, createIdentity, publishRevocations, type AccountChange, type AccountView } from '../../core/auth';
import { ServiceUnavailableError } from '../../core/errors';
import { createJobRemoval } from '../../core/jobs/removal';
import { SessionRepository } from '../../core/db/sessions';
import type { Runtime } from '../../core/runtime';
import * as parse from '../args';
import type { RuntimeAction } from '../context';
import { UsageError, printJson, shownArgument, shownAsText, shownValue } from '../output';

/** The identity settings the CLI needs beyond the shared ones and the sealing secret (keyEncryptionSecret). */
const IdentityCliEnv = EnvSchema.pick({ JWT_ISSUER: true, ACCESS_TOKEN_TTL_SECONDS: true, REFRESH_TOKEN_TTL_SECONDS: true, PASSWORD_RESET_TTL_SECONDS: true, PUBLIC_URL: true });

function email(value: string): string {
  const parsed = Email.safeParse(value);
  if (!parsed.success) throw new UsageError(`not an email address: ${shownArgument(value)}`);
  return parsed.data as string;
}

function reasonOf(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const parsed = AccountChangeReason.safeParse(value);
  if (!parsed.success) throw new UsageError(`--reason ${parsed.error.issues[0]?.message ?? 'is not valid'}, got ${shownArgument(value)}`);
  return parsed.data;
}

/**
 * Who runs the command, as the account's audit trail records it: the OS user and the host.
 * In a pod the host is the pod's name, which the cluster's audit log ties to whoever ran
 * `kubectl exec` there; --reason says the rest (a ticket, who asked).
 */
function operator(): string {
  let user: string;
  try {
    user = os.userInfo().username;
  } catch {
    // A uid with no passwd entry, as in some containers.
    user = `uid ${process.getuid?.() ?? 'unknown'}`;
  }
  return `cli:${user}@${os.hostname()}`;
}

/** Far more than any password the policy allows: standard input is a password, not a file piped by mistake. */
const MAX_PASSWORD_INPUT_BYTES = 64 * 1024;

/**
 * A password as sign-in will see it. Sign-in reads JSON, which refuses a NUL character, so an
 * account given one could never sign in; bytes that are not UTF-8 would be stored as U+FFFD
 * and match nothing a browser sends.
 */
function signInPassword(bytes: Buffer): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new UsageError('the password is not UTF-8 text');
  }
  if (text.includes('\0')) throw new UsageError('the password contains a NUL character, which sign-in refuses');
  return text;
}

/** The password from standard input (piped), or asked for without echo on a terminal: never a flag, which `ps` and shell history would show. */
async function readPassword(): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stdin) {
      size += (chunk as Buffer).length;
      if (size > MAX_PASSWORD_INPUT_BYTES) throw new UsageError(`standard input holds more than ${MAX_PASSWORD_INPUT_BYTES} bytes: pipe in the password alone`);
      chunks.push(chunk as Buffer);
    }
    return signInPassword(Buffer.concat(chunks)).replace(/\r?\n$/, '');
  }
  process.stderr.write('password: ');
  stdin.setRawMode(true);
  const typed = await new Promise<string>((resolve) => {
    let text = '';
    const onData = (data: Buffer) => {
      for (const character of data.toString('utf8')) {
        if (character === '\r' || character === '\n') {
          stdin.setRawMode(false);
          stdin.off('data', onData);
          stdin.pause();
          process.stderr.write('\n');
          resolve(text);
          return;
        }
        if (character === '\u0003') process.exit(130);
        if (character === '\u007f') text = text.slice(0, -1);
        else text += character;
      }
    };
    stdin.on('data', onData);
    stdin.resume();
  });
  return signInPassword(Buffer.from(typed, 'utf8'));
}

/**
 * The api's sealing secret: the keyring the CLI starts unseals the stored keys, as the api
 * does, though the CLI signs nothing. Missing or too short, it is an environment problem
 * like any other variable's (`kind: environment`, naming it), refused before connecting.
 */
function keyEncryptionSecret(): string {
  try {
    return parseEnv(process.env, EnvSchema.pick({ KEY_ENCRYPTION_SECRET: true })).KEY_ENCRYPTION_SECRET;
  } catch (error) {
    if (!(error instanceof EnvError)) throw error;
    // A secret of its own would not unseal the keys the api sealed.
    throw new EnvError(error.issues.map((issue) => ({ ...issue, message: `${issue.message} (the api's own)` })));
  }
}

/** Auth use cases for the CLI; revocations it writes reach every API process through Redis. */
async function identityOf(core: Runtime, secret: string) {
  const env = { ...parseEnv(process.env, IdentityCliEnv), KEY_ENCRYPTION_SECRET: secret, QUEUE_PREFIX: core.env.QUEUE_PREFIX, REDIS_URL: core.env.REDIS_URL };
  return createIdentity(env, core, { log: core.log, mirror: false });
}

/** An account as one line of text: who it is, its role, whether it is disabled. */
function described(user: AccountView): string {
  const standing = user.disabledAt ? `disabled since ${user.disabledAt.toISOString()}` : 'enabled';
  return `${shownAsText(user.email)} (${user.id}, ${user.role}, ${standing})`;
}

/** Runs an operator's change with the CLI's identity and prints its outcome: `text` for a terminal, the change itself with --json. */
function accountChange(options: { json?: boolean }, secret: string, change: (identity: Awaited<ReturnType<typeof identityOf>>) => Promise<AccountChange>, text: (result: AccountChange) => string): RuntimeAction {
  return async (core) => {
    const identity = await identityOf(core, secret);
    try {
      const result = await change(identity);
      if (options.json) printJson(result);
      else process.stdout.write(`${text(result)}\n`);
      return 0;
    } finally {
      await identity.close();
    }
  };
}

export function createAdmin(address: string, options: { json?: boolean }): RuntimeAction {
  const target = email(address);
  const secret = keyEncryptionSecret();
  return async (core) => {
    const password = await readPassword();
    const identity = await identityOf(core, secret);
    try {
      const { user, created, promoted } = await identity.auth.createAdmin(target, password, { actor: operator() });
      if (options.json) printJson({ user, created, promoted });
      else if (created) process.stdout.write(`created admin ${shownAsText(user.email)} (${user.id})\n`);
      else if (promoted) process.stdout.write(`${shownAsText(user.email)} exists: promoted to admin (its sessions were ended; its password is unchanged)\n`);
      else process.stdout.write(`${shownAsText(user.email)} is an admin already; nothing changed (its password is unchanged)\n`);
      return 0;
    } finally {
      await identity.close();
    }
  };
}

export function setRole(address: string, role: string, options: { reason?: string; json?: boolean }): RuntimeAction {
  const target = email(address);
  const parsedRole = UserRoleSchema.safeParse(role);
  if (!parsedRole.success) throw new UsageError(`role must be user or admin, got ${shownArgument(role)}`);
  const reason = reasonOf(options.reason);
  const secret = keyEncryptionSecret();
  return accountChange(
    options,
    secret,
    (identity) => identity.auth.setRole(target, parsedRole.data, { actor: operator(), reason }),
    ({ user, changed }) => (changed ? `${shownAsText(user.email)} is now ${user.role}; its sessions were ended` : `${shownAsText(user.email)} is already ${user.role}; nothing changed`),
  );
}

export function disableUser(address: string, options: { reason?: string; json?: boolean }): RuntimeAction {
  const target = email(address);
  const reason = reasonOf(options.reason);
  const secret = keyEncryptionSecret();
  return accountChange(
    options,
    secret,
    (identity) => identity.auth.disable(target, { actor: operator(), reason }),
    ({ user, changed, sessionsEnded }) =>
      [
        changed ? `disabled ${described(user)}` : `${described(user)} was disabled already; its sessions' revocation was announced again`,
        `sign-in, refresh and password reset refuse it; ${sessionsEnded} session(s) ended now, and API processes refuse its access tokens from their next request`,
        `its queued and running jobs keep running: platform jobs list --owner ${user.id}`,
      ].join('\n'),
  );
}

export function enableUser(address: string, options: { reason?: string; resetPassword?: boolean; json?: boolean }): RuntimeAction {
  const target = email(address);
  const reason = reasonOf(options.reason);
  const secret = keyEncryptionSecret();
  return accountChange(
    options,
    secret,
    (identity) => identity.auth.enable(target, { actor: operator(), reason, clearPassword: options.resetPassword === true }),
    ({ user, changed, passwordCleared }) => {
      if (passwordCleared) {
        return `${changed ? 'enabled' : 'reset the password of'} ${described(user)}: its password is cleared (the old one no longer signs in), its sessions are ended, and a reset mail is on its way to ${shownAsText(user.email)}: it signs in again once its owner sets a new password`;
      }
      return changed ? `enabled ${described(user)}: it can sign in again (the sessions the disable ended stay ended)` : `${described(user)} is not disabled; nothing changed`;
    },
  );
}

const SHOWN_EVENTS = 10;

export function showUser(address: string, options: { json?: boolean }): RuntimeAction {
  const target = email(address);
  const secret = keyEncryptionSecret();
  return async (core) => {
    const identity = await identityOf(core, secret);
    try {
      const { user, events } = await identity.auth.describe(target, SHOWN_EVENTS);
      if (options.json) {
        printJson({ user, events });
        return 0;
      }
      process.stdout.write(`${described(user)}\n`);
      if (events.length === 0) process.stdout.write('no operator action recorded\n');
      else process.stdout.write(`newest ${events.length} operator action(s):\n`);
      for (const event of events) {
        const what = event.role ? `${event.action} (${event.role})` : event.action;
        process.stdout.write(`  ${event.at.toISOString()}  ${what}  by ${shownValue(event.actor)}${event.reason === undefined ? '' : `: ${shownValue(event.reason)}`}\n`);
      }
      return 0;
    } finally {
      await identity.close();
    }
  };
}

/**
 * Rotates the signing key, then revokes the keys rotated out through the denylist, so every
 * API process refuses their tokens (and reloads its keys) at once rather than at its next
 * key refresh: rotating twice is how a key that may have leaked is retired, and until then
 * it would sign any account's token, an admin's included. The revocation covers what a
 * process that missed it may still sign before that refresh.
 */
export function rotateKeys(options: { json?: boolean }): RuntimeAction {
  const secret = keyEncryptionSecret();
  const { ACCESS_TOKEN_TTL_SECONDS } = parseEnv(process.env, IdentityCliEnv);
  return async (core) => {
    const { kid, dropped } = await new SigningKeyStore(core.generalPool).rotate(secret);
    const until = Math.ceil((Date.now() + KEY_REFRESH_MS) / 1000) + ACCESS_TOKEN_TTL_SECONDS;
    try {
      await publishRevocations(core.redis.client, core.env.QUEUE_PREFIX, dropped.map((id) => ({ kind: 'key' as const, id, until })));
    } catch (error) {
      throw new ServiceUnavailableError(
        `new signing key ${kid}, and ${dropped.length === 0 ? 'no key was' : `key(s) ${dropped.join(', ')} were`} rotated out in PostgreSQL, but the revocation could not be announced through Redis (${error instanceof Error ? error.message : String(error)}): API processes keep accepting tokens of the keys rotated out until their next key refresh (within a minute).`,
      );
    }
    if (options.json) printJson({ kid, revoked: dropped });
    else {
      const revoked = dropped.length === 0 ? '' : `; tokens signed with ${dropped.join(', ')} are refused from now on`;
      process.stdout.write(`new signing key ${kid}; the previous key still verifies; API processes sign with the new one within a minute${revoked}\n`);
    }
    return 0;
  };
}

export function purge(options: { retentionDays?: string; json?: boolean }): RuntimeAction {
  const override = parse.retentionDays(options.retentionDays);
  return async (core) => {
    const days = override ?? core.env.JOB_RETENTION_DAYS;
    const purged = await createJobRemoval({ generalPool: core.generalPool, store: core.store, log: core.log }).purge(days);
    const expired = await new SessionRepository(core.generalPool).purgeExpired();
    if (options.json) printJson({ purged, retentionDays: days, expired });
    else {
      process.stdout.write(`purged ${purged} finished job(s) older than ${days} day(s), with their events and result files\n`);
      process.stdout.write(`purged ${expired.sessions} expired session(s), ${expired.refreshTokens} expired refresh token(s) and ${expired.resetTokens} expired reset token(s)\n`);
    }
    return 0;
  };
}
