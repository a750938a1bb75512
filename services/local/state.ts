import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { SystemUser } from './child';
import { LocalRunError } from './errors';
import { findFreePort, isPortUsable } from './free-port';
import { REDIS_AUTH_FILE } from './redis';

/** The secrets `npm start` generates under `.data/` and reads back on later runs. */
const GENERATED_SECRETS = ['postgres-password', 'redis-password', 'key-encryption-secret'] as const;
export type GeneratedSecret = (typeof GENERATED_SECRETS)[number];

/**
 * Every file under `.data/` that holds a secret, each of which must stay readable by its
 * owner only: the generated ones, the CLI's connection settings (with the database
 * password), and the private Redis's config (its password; RedisServer writes it into
 * the server's directory, `.data/redis`).
 */
const SECRET_FILES: readonly string[] = [...GENERATED_SECRETS, 'cli.env', path.join('redis', REDIS_AUTH_FILE)];

/**
 * What the local run keeps under `.data/` between runs besides the servers' data:
 * generated secrets (mode 0600, never logged, their modes checked at every start) and the
 * ports it chose, so a second `npm start` serves PostgreSQL and Redis where the first did
 * whenever those ports are free.
 */
export class LocalState {
  constructor(readonly root: string) {}

  /**
   * Creates the directory, mode 0700: it holds the database, the queue, uploads and
   * secrets. When PostgreSQL runs as its own system user (we are root), that user owns it
   * so the server can reach its data; root reaches everything anyway, and nobody else can
   * enter. Then checks the secrets already there.
   */
  async prepare(options: { owner?: SystemUser } = {}): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    await chmod(this.root, 0o700);
    if (options.owner) await chown(this.root, options.owner.uid, options.owner.gid);
    for (const name of SECRET_FILES) await this.checkSecretMode(name);
  }

  path(...parts: string[]): string {
    return path.join(this.root, ...parts);
  }

  /**
   * Writes `cli.env`: the connection settings of this run, so the `platform` CLI can be
   * pointed at it (`set -a; . .data/cli.env; set +a`). Mode 0600: the URL carries the
   * database password.
   */
  async writeCliEnv(values: Record<string, string | undefined>): Promise<void> {
    const lines = Object.entries(values)
      .filter((entry): entry is [string, string] => entry[1] !== undefined)
      .map(([name, value]) => `${name}='${value.replaceAll("'", "'\\''")}'`);
    const file = this.path('cli.env');
    await writeFile(file, `${lines.join('\n')}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
  }

  /** A random secret generated on first use and read back afterwards (after its mode is checked). */
  async secret(name: GeneratedSecret): Promise<string> {
    const file = this.path(name);
    await this.checkSecretMode(name);
    try {
      const existing = (await readFile(file, 'utf8')).trim();
      if (existing) return existing;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const generated = randomBytes(48).toString('base64url');
    await writeFile(file, `${generated}\n`, { mode: 0o600 });
    return generated;
  }

  /**
   * Refuses to go on when a secret file may be read or changed by anyone but us: it may
   * have leaked, and a secret silently re-protected would hide that.
   */
  private async checkSecretMode(name: string): Promise<void> {
    const file = this.path(name);
    let info;
    try {
      info = await stat(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    const mode = info.mode & 0o777;
    const ours = info.uid === process.getuid?.();
    if ((mode & 0o077) !== 0 || !ours) {
      throw new LocalRunError(
        `${file} must be readable by its owner only (it is mode ${mode.toString(8).padStart(4, '0')}${ours ? '' : `, owned by uid ${info.uid}`}): ` +
          `consider the secret exposed; run chmod 600 ${file}${ours ? '' : ` and chown it to uid ${process.getuid?.()}`}, or delete it to generate a new one ` +
          `(deleting postgres-password also means deleting ${this.path('postgres')})`,
      );
    }
  }

  /**
   * The port used last time for `name` (or `preferred` the first time) if it is free on `host`
   * now and not reserved for a listener the user placed (a PORT set since), else a free one.
   */
  async port(name: string, preferred?: number, host = '127.0.0.1'): Promise<number> {
    const file = this.path('ports.json');
    const remembered = readPorts(file);
    const candidate = remembered[name] ?? preferred;
    const port = candidate !== undefined && (await isPortUsable(candidate, host)) ? candidate : await findFreePort(host);
    if (remembered[name] !== port) await writeFile(file, `${JSON.stringify({ ...readPorts(file), [name]: port }, null, 2)}\n`);
    return port;
  }
}

function readPorts(file: string): Record<string, number> {
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (parsed === null || typeof parsed !== 'object') return {};
    return Object.fromEntries(Object.entries(parsed).filter((entry): entry is [string, number] => Number.isInteger(entry[1])));
  } catch {
    return {};
  }
}
