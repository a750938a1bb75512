import type { Env } from '../../contract';
import { SessionRepository } from '../db/sessions';
import { createUserRepository, PLATFORM_USER_ID } from '../db/users';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { createRedisConnection } from '../queue/connection';
import type { Runtime } from '../runtime';
import { createAuthService, type AuthService, type Mail } from './service';
import { publishRevocations, RevocationMirror, type Revocation } from './revocations';
import { createSecurityEvents } from './security-events';
import { Keyring, SigningKeyStore } from './signing-keys';
import { createAccessTokens } from './tokens';

export interface Identity {
  auth: AuthService;
  keyring: Keyring;
  /** Absent in processes that only write revocations (the CLI). */
  mirror?: RevocationMirror;
  close(): Promise<void>;
}

export type IdentityEnv = Pick<
  Env,
  'KEY_ENCRYPTION_SECRET' | 'JWT_ISSUER' | 'ACCESS_TOKEN_TTL_SECONDS' | 'REFRESH_TOKEN_TTL_SECONDS' | 'PASSWORD_RESET_TTL_SECONDS' | 'PUBLIC_URL' | 'QUEUE_PREFIX' | 'REDIS_URL'
>;

/**
 * The identity part of a process, wired from the platform core: the keyring (signing keys
 * from PostgreSQL), the denylist mirror (API processes: `verify` asks it on every request),
 * and the auth use cases. Mails are email.send jobs owned by the platform's own account.
 */
export async function createIdentity(env: IdentityEnv, core: Pick<Runtime, 'generalPool' | 'redis' | 'jobs'>, options: { log: Logger; metrics?: Metrics; mirror: boolean }): Promise<Identity> {
  const { log } = options;
  const sessions = new SessionRepository(core.generalPool);
  const keyring = new Keyring(new SigningKeyStore(core.generalPool), env.KEY_ENCRYPTION_SECRET, log);
  await keyring.start();

  let mirror: RevocationMirror | undefined;
  let subscriber: ReturnType<typeof createRedisConnection> | undefined;
  if (options.mirror) {
    subscriber = createRedisConnection(env.REDIS_URL, 'subscriber', log);
    mirror = new RevocationMirror({
      subscriber,
      client: core.redis.client,
      prefix: env.QUEUE_PREFIX,
      durable: () => sessions.revokedStillRelevant(),
      onKeyRevoked: () => void keyring.reload().catch((error: unknown) => log.warn({ err: error }, 'could not reload the signing keys after a key was revoked')),
      log,
    });
    await mirror.start();
  }
  const tokens = createAccessTokens(env, keyring, {
    isRevoked: mirror ? (claims) => mirror.isRevoked(claims.tokenId, claims.sessionId, claims.kid) : undefined,
    revocations: mirror ? (listener) => mirror.onChange(listener) : undefined,
  });
  const revoke = async (revocations: Revocation[]) => {
    // This process honours its own revocations at once, whatever Redis does.
    mirror?.add(revocations);
    await publishRevocations(core.redis.client, env.QUEUE_PREFIX, revocations);
  };
  const sendMail = async (mail: Mail) => {
    await core.jobs.submitInternal({ ownerId: PLATFORM_USER_ID, type: 'email.send', input: mail });
  };
  const auth = createAuthService({
    env,
    users: createUserRepository(core.generalPool),
    sessions,
    tokens,
    revoke,
    sendMail,
    security: createSecurityEvents(log, options.metrics),
    log,
  });
  return {
    auth,
    keyring,
    mirror,
    async close() {
      keyring.close();
      mirror?.close();
      subscriber?.disconnect();
    },
  };
}
