import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isProcessAlive, type SystemUser } from './child';
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

/** Names the run that uses `.data/`: its pid and that process's start time, so a pid reused since is not taken for it. */
const RUN_FILE = 'run.pid';

/**
 * What the local run keeps under `.data/` between runs besides the servers' data:
 * generated secrets (mode 0600, never logged, their modes checked at every start) and the
 * ports it chose, so a second `npm start` serves PostgreSQL and Redis where the first did
 * whenever those ports are free.
 */
export class LocalState {
  private claimed = false;

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

  /**
   * Claims `.data/` for this run. Two runs of one checkout would share the servers' data
   * (PostgreSQL refuses a second postmaster on its directory, but a second private Redis
   * would append to the first one's files) and rewrite each other's ports.json and cli.env.
   * A claim left by a run that was killed outright names a process that is gone: it is
   * taken over.
   */
  async claimRun(): Promise<void> {
    const file = this.path(RUN_FILE);
    const mine = `${process.pid} ${processStartTime(process.pid) ?? 0}\n`;
    // A second try covers a stale claim removed here; a third, another start removing it too.
    for (let attempt = 0; attempt < 3; attempt += 1) {
      try {
        await writeFile(file, mine, { flag: 'wx', mode: 0o600 });
        this.claimed = true;
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = readRunHolder(file);
      if (holder && isRunning(holder)) {
        throw new LocalRunError(`another \`npm start\` runs in this checkout (pid ${holder.pid}) with ${this.root}: stop it first (Ctrl-C in its terminal, or kill -INT ${holder.pid})`);
      }
      await unlink(file).catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      });
    }
    throw new LocalRunError(`could not claim ${this.root} for this run: another \`npm start\` is starting in this checkout`);
  }

  /** Gives `.data/` up once everything this run started has stopped. */
  releaseRun(): void {
    if (!this.claimed) return;
    this.claimed = false;
    rmSync(this.path(RUN_FILE), { force: true });
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

interface RunHolder {
  pid: number;
  startTime: string;
}

function readRunHolder(file: string): RunHolder | undefined {
  try {
    const [pid, startTime = '0'] = readFileSync(file, 'utf8').trim().split(' ');
    const parsed = Number(pid);
    return Number.isInteger(parsed) && parsed > 0 ? { pid: parsed, startTime } : undefined;
  } catch {
    return undefined;
  }
}

function isRunning(holder: RunHolder): boolean {
  if (!isProcessAlive(holder.pid)) return false;
  const startTime = processStartTime(holder.pid);
  // Without /proc the start time is unknown on both sides: a live pid is taken at its word.
  return startTime === undefined || holder.startTime === '0' || startTime === holder.startTime;
}

/** The process's start time in clock ticks since boot (/proc/<pid>/stat, field 22), or undefined off Linux. */
function processStartTime(pid: number): string | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may hold spaces and parentheses: state is field 3.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3];
  } catch {
    return undefined;
  }
}
