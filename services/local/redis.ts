import type { ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { findExecutable, hasExited, spawnChild, stopChild, waitForExit, type ExitStatus } from './child';
import { forEachLine, type LogLevel } from './log-stream';

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
  onLine?: (line: string) => void;
  parentDeathSignal?: NodeJS.Signals;
  ownProcessGroup?: boolean;
  /** Called when the server exits after it was ready and without stop() or kill() asking it to. */
  onUnexpectedExit?: (exit: ExitStatus) => void;
}

const RECENT_LINES = 40;

/** A private redis-server bound to 127.0.0.1, run as our child. */
export class RedisServer {
  readonly port: number;
  readonly dir: string;
  private process: ChildProcess | undefined;
  private stopRequested = false;
  private readonly recentLines: string[] = [];

  constructor(private readonly options: RedisServerOptions) {
    this.port = options.port;
    this.dir = path.resolve(options.dir);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.process && !hasExited(this.process) ? this.process.pid : undefined;
  }

  /** Starts the server and resolves once it answers PING (after loading its data). */
  async start(options: { readyTimeoutMs?: number } = {}): Promise<void> {
    if (this.pid !== undefined) return;
    const command = this.options.command ?? findRedisServer();
    if (!command) throw new Error('redis-server is not on PATH');
    await mkdir(this.dir, { recursive: true });
    const args = [
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
    this.process = child;
    this.stopRequested = false;
    this.recentLines.length = 0;
    for (const stream of [child.stdout, child.stderr]) if (stream) forEachLine(stream, (line) => this.remember(line));
    await this.waitUntilReady(child, options.readyTimeoutMs ?? 60_000);
    const reportUnexpectedExit = (): void => {
      if (!this.stopRequested) this.options.onUnexpectedExit?.({ code: child.exitCode, signal: child.signalCode });
    };
    if (hasExited(child)) reportUnexpectedExit();
    else child.once('exit', reportUnexpectedExit);
  }

  /** SIGTERM: redis flushes its append-only file and exits. */
  async stop(): Promise<void> {
    const child = this.process;
    if (!child || hasExited(child)) return;
    this.stopRequested = true;
    await stopChild(child, [{ signal: 'SIGTERM', waitMs: 30_000 }]);
  }

  async kill(): Promise<void> {
    const child = this.process;
    if (!child || hasExited(child)) return;
    this.stopRequested = true;
    child.kill('SIGKILL');
    await waitForExit(child, 10_000);
  }

  recentOutput(): string {
    return this.recentLines.join('\n');
  }

  private remember(line: string): void {
    this.recentLines.push(line);
    if (this.recentLines.length > RECENT_LINES) this.recentLines.shift();
    this.options.onLine?.(line);
  }

  private async waitUntilReady(child: ChildProcess, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (hasExited(child)) {
        throw new Error(`redis-server exited during startup (code ${child.exitCode}, signal ${child.signalCode}):\n${this.recentOutput()}`);
      }
      if ((await ping(this.port)) === 'PONG') return;
      if (Date.now() > deadline) throw new Error(`redis-server did not answer PING within ${timeoutMs} ms:\n${this.recentOutput()}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** One PING over a raw connection: 'PONG', 'LOADING' while it reads its data, or 'DOWN'. */
function ping(port: number): Promise<'PONG' | 'LOADING' | 'DOWN'> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let reply = '';
    const finish = (result: 'PONG' | 'LOADING' | 'DOWN'): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(1_000, () => finish('DOWN'));
    socket.once('error', () => finish('DOWN'));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (!reply.includes('\r\n')) return;
      finish(reply.startsWith('+PONG') ? 'PONG' : reply.startsWith('-LOADING') ? 'LOADING' : 'DOWN');
    });
  });
}
