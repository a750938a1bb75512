import type { ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { findExecutable, hasExited, spawnChild, waitForExit, type ExitStatus } from './child';
import { type LogLevel } from './log-stream';
import { ServerProcess } from './server-process';

/** `redis-server` on PATH, or undefined. */
export function findRedisServer(): string | undefined {
  return findExecutable('redis-server');
}

const REDIS_LINE = /^\d+:[A-Z] \d+ \w+ \d+ [\d:.]+ ([.\-*#]) (.*)$/;
/** Lines printed from a signal handler carry no date or level: `pid:signal-handler (time) message`. */
const REDIS_SIGNAL_LINE = /^\d+:signal-handler \(\d+\) (.*)$/;

/** Splits a redis-server log line (`pid:role date time <level> message`) into level and message. */
export function parseRedisLine(line: string): { level: LogLevel; msg: string } {
  const match = REDIS_LINE.exec(line);
  if (!match) return { level: 'info', msg: REDIS_SIGNAL_LINE.exec(line)?.[1] ?? line };
  const [, marker, msg = line] = match;
  // Redis logs its routine startup banner at warning level ('#'); only real warnings say so.
  const level: LogLevel = marker === '.' || marker === '-' ? 'debug' : /^(WARNING|Failed|Error)/i.test(msg) ? 'warn' : 'info';
  return { level, msg };
}

export interface RedisServerOptions {
  /** Path of redis-server; found on PATH by default. */
  command?: string;
  port: number;
  /** Working directory: the append-only files live here. */
  dir: string;
  /** Persist every write to an append-only file, so queued jobs survive a restart. */
  appendonly: boolean;
  /**
   * Clients must AUTH with it (requirepass). Handed to redis-server in a config file of mode
   * 0600 in `dir`, never on its command line, where any local user could read it.
   */
  password?: string;
  onLine?: (line: string) => void;
  parentDeathSignal?: NodeJS.Signals;
  ownProcessGroup?: boolean;
  /** Called when the server exits after it was ready and without stop() or kill() asking it to. */
  onUnexpectedExit?: (exit: ExitStatus) => void;
}

/** The config file in the server's directory that hands redis-server its password. */
export const REDIS_AUTH_FILE = 'redis-auth.conf';

/** A private redis-server bound to 127.0.0.1, run as our child. */
export class RedisServer {
  readonly port: number;
  readonly dir: string;
  private readonly server: ServerProcess;

  constructor(private readonly options: RedisServerOptions) {
    this.port = options.port;
    this.dir = path.resolve(options.dir);
    this.server = new ServerProcess(options);
  }

  /**
   * The connection URL, with the password when there is one: log it through redactUrl. It
   * names the user, `default` (the one requirepass sets the password of): ioredis reads
   * `redis://:password@` as no user, but redis-cli -u (7.0) reads it as the user "" and its
   * AUTH fails, so the URL in .data/cli.env would not work in `redis-cli -u "$REDIS_URL"`.
   */
  get url(): string {
    const credentials = this.options.password ? `default:${encodeURIComponent(this.options.password)}@` : '';
    return `redis://${credentials}127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.server.pid;
  }

  /** Starts the server and resolves once it answers PING (after loading its data). */
  async start(options: { readyTimeoutMs?: number } = {}): Promise<void> {
    if (this.pid !== undefined) return;
    const command = this.options.command ?? findRedisServer();
    if (!command) throw new Error('redis-server is not on PATH');
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const config: string[] = [];
    if (this.options.password) {
      const file = path.join(this.dir, REDIS_AUTH_FILE);
      await writeFile(file, `requirepass ${this.options.password}\n`, { mode: 0o600 });
      config.push(file);
    }
    const args = [
      ...config,
      '--port', String(this.port),
      '--bind', '127.0.0.1',
      '--dir', this.dir,
      '--save', '',
      '--appendonly', this.options.appendonly ? 'yes' : 'no',
      // BullMQ keys must never be evicted: a queue silently losing jobs is worse than an OOM error.
      '--maxmemory-policy', 'noeviction',
      '--daemonize', 'no',
      '--logfile', '',
    ];
    const child = spawnChild(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: this.dir,
      parentDeathSignal: this.options.parentDeathSignal,
      ownProcessGroup: this.options.ownProcessGroup,
    });
    await this.server.adopt(child, (started) => this.waitUntilReady(started, options.readyTimeoutMs ?? 60_000));
  }

  /** SIGTERM: redis flushes its append-only file and exits. */
  async stop(): Promise<void> {
    await this.server.stop([{ signal: 'SIGTERM', waitMs: 30_000 }]);
  }

  async kill(): Promise<void> {
    const child = this.server.requestStop();
    if (!child) return;
    child.kill('SIGKILL');
    await waitForExit(child, 10_000);
  }

  recentOutput(): string {
    return this.server.recentOutput();
  }

  private async waitUntilReady(child: ChildProcess, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (hasExited(child)) {
        throw new Error(`redis-server exited during startup (code ${child.exitCode}, signal ${child.signalCode}):\n${this.recentOutput()}`);
      }
      if ((await ping(this.port, this.options.password)) === 'PONG') return;
      if (Date.now() > deadline) throw new Error(`redis-server did not answer PING within ${timeoutMs} ms:\n${this.recentOutput()}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** One PING over a raw connection (after AUTH when there is a password): 'PONG', 'LOADING' while it reads its data, or 'DOWN'. */
function ping(port: number, password?: string): Promise<'PONG' | 'LOADING' | 'DOWN'> {
  const commands = password ? [`AUTH ${password}`, 'PING'] : ['PING'];
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let reply = '';
    const finish = (result: 'PONG' | 'LOADING' | 'DOWN'): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(1_000, () => finish('DOWN'));
    socket.once('error', () => finish('DOWN'));
    socket.once('connect', () => socket.write(commands.map((command) => `${command}\r\n`).join('')));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      const lines = reply.split('\r\n');
      if (lines.length <= commands.length) return;
      const last = lines[commands.length - 1] ?? '';
      finish(last.startsWith('+PONG') ? 'PONG' : last.startsWith('-LOADING') ? 'LOADING' : 'DOWN');
    });
  });
}
