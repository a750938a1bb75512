import { EnvSchema, parseEnv } from '../../contract';
import { Email, SigningKeyStore, UserRoleSchema, createIdentity } from '../../core/auth';
import { createJobRemoval } from '../../core/jobs/removal';
import type { Runtime } from '../../core/runtime';
import * as parse from '../args';
import type { RuntimeAction } from '../context';
import { UsageError, printJson, shownArgument } from '../output';

/** The identity settings the CLI needs beyond the shared ones: only `keys rotate` needs the sealing secret. */
const IdentityCliEnv = EnvSchema.pick({ JWT_ISSUER: true, ACCESS_TOKEN_TTL_SECONDS: true, REFRESH_TOKEN_TTL_SECONDS: true, PASSWORD_RESET_TTL_SECONDS: true, PUBLIC_URL: true });

function email(value: string): string {
  const parsed = Email.safeParse(value);
  if (!parsed.success) throw new UsageError(`not an email address: ${shownArgument(value)}`);
  return parsed.data as string;
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

/** The api's sealing secret: the keyring the CLI starts unseals the stored keys, as the api does, though the CLI signs nothing. */
function keyEncryptionSecret(): string {
  const secret = EnvSchema.shape.KEY_ENCRYPTION_SECRET.safeParse(process.env.KEY_ENCRYPTION_SECRET);
  if (!secret.success) throw new UsageError('environment variable KEY_ENCRYPTION_SECRET is required (the api\'s, at least 32 characters)');
  return secret.data;
}

/** Auth use cases for the CLI; revocations it writes reach every API process through Redis. */
async function identityOf(core: Runtime, secret: string) {
  const env = { ...parseEnv(process.env, IdentityCliEnv), KEY_ENCRYPTION_SECRET: secret, QUEUE_PREFIX: core.env.QUEUE_PREFIX, REDIS_URL: core.env.REDIS_URL };
  return createIdentity(env, core, { log: core.log, mirror: false });
}

export function createAdmin(address: string, options: { json?: boolean }): RuntimeAction {
  const target = email(address);
  const secret = keyEncryptionSecret();
  return async (core) => {
    const password = await readPassword();
    const identity = await identityOf(core, secret);
    try {
      const { user, created } = await identity.auth.createAdmin(target, password);
      if (options.json) printJson({ user, created });
      else process.stdout.write(created ? `created admin ${user.email} (${user.id})\n` : `${user.email} exists: promoted to admin (its sessions were ended; its password is unchanged)\n`);
      return 0;
    } finally {
      await identity.close();
    }
  };
}

export function setRole(address: string, role: string, options: { json?: boolean }): RuntimeAction {
  const target = email(address);
  const parsedRole = UserRoleSchema.safeParse(role);
  if (!parsedRole.success) throw new UsageError(`role must be user or admin, got ${shownArgument(role)}`);
  const secret = keyEncryptionSecret();
  return async (core) => {
    const identity = await identityOf(core, secret);
    try {
      const user = await identity.auth.setRole(target, parsedRole.data);
      if (options.json) printJson({ user });
      else process.stdout.write(`${user.email} is now ${user.role}; its sessions were ended\n`);
      return 0;
    } finally {
      await identity.close();
    }
  };
}

export function rotateKeys(options: { json?: boolean }): RuntimeAction {
  const secret = keyEncryptionSecret();
  return async (core) => {
    const kid = await new SigningKeyStore(core.generalPool).rotate(secret);
    if (options.json) printJson({ kid });
    else process.stdout.write(`new signing key ${kid}; the previous key still verifies; API processes pick it up within a minute\n`);
    return 0;
  };
}

export function purge(options: { retentionDays?: string; json?: boolean }): RuntimeAction {
  const override = parse.retentionDays(options.retentionDays);
  return async (core) => {
    const days = override ?? core.env.JOB_RETENTION_DAYS;
    const purged = await createJobRemoval({ generalPool: core.generalPool, store: core.store, log: core.log }).purge(days);
    if (options.json) printJson({ purged, retentionDays: days });
    else process.stdout.write(`purged ${purged} finished job(s) older than ${days} day(s), with their events and result files\n`);
    return 0;
  };
}
