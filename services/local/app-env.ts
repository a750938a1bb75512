import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';

/**
 * The environments `npm start` hands the API and the worker: the user's own, with the parts
 * the local run provides (database, Redis, sealing secret, object store, ports) filled in.
 * Built by the same functions when the run checks them before starting anything and when
 * it starts the apps, so what is checked is what runs.
 */

/** What the local run provides in place of variables the user left unset. */
export interface RunProvided {
  databaseUrl: string;
  redisUrl: string;
  keyEncryptionSecret: string;
  /** Unset when files go to S3 (S3_BUCKET). */
  objectStoreDir?: string;
}

/** What both apps receive. */
export function appEnvironment(source: NodeJS.ProcessEnv, provided: RunProvided): NodeJS.ProcessEnv {
  return {
    ...source,
    NODE_ENV: source.NODE_ENV || 'development',
    DATABASE_URL: provided.databaseUrl,
    REDIS_URL: provided.redisUrl,
    KEY_ENCRYPTION_SECRET: provided.keyEncryptionSecret,
    // Plain HTTP on localhost: a Secure cookie would never be sent back. The API warns of it as it starts.
    COOKIE_SECURE: source.COOKIE_SECURE || 'false',
    ...(provided.objectStoreDir ? { OBJECT_STORE_DIR: provided.objectStoreDir } : {}),
  };
}

/** Where the API listens, and where links in its mails (password resets) point: this run's console. */
export function apiEnvironment(appEnv: NodeJS.ProcessEnv, port: number): NodeJS.ProcessEnv {
  return { ...appEnv, PORT: String(port), PUBLIC_URL: appEnv.PUBLIC_URL || `http://localhost:${port}`, ANNOUNCE_PORT_OVER_IPC: 'true', SERVICE_NAME: 'api' };
}

/**
 * The local run's one worker holds one worker slot, named for this checkout on this host:
 * the run restarts the worker only after it saw the last one exit, so a restarted worker
 * releases the jobs the crashed one was running at once. Another checkout (which may share
 * an external Redis) gets a slot of its own.
 */
function localWorkerSlot(checkoutDir: string): string {
  return `local-${createHash('sha256').update(`${os.hostname()}\0${path.resolve(checkoutDir)}`).digest('hex').slice(0, 16)}`;
}

/** The worker never receives the key-encryption secret (WorkerEnvSchema): a compromised worker cannot mint tokens. */
export function workerEnvironment(appEnv: NodeJS.ProcessEnv, metricsPort: number): NodeJS.ProcessEnv {
  const { KEY_ENCRYPTION_SECRET: _sealingSecret, ...rest } = appEnv;
  return { ...rest, SERVICE_NAME: 'worker', WORKER_METRICS_PORT: String(metricsPort), WORKER_SLOT: appEnv.WORKER_SLOT || localWorkerSlot(process.cwd()) };
}
