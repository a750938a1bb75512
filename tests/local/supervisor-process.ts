import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { descendantPidsOf } from '../../services/local/child';
import { nodeArgsFor } from '../harness/compiled-children';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const START_SCRIPT = path.join(REPO_ROOT, 'services', 'local', 'start.ts');

export interface LogRecord {
  level: string;
  service: string;
  msg: string;
  [field: string]: unknown;
}

/**
 * `npm start` run from this checkout (no build step: the run's transpiled tree, or the
 * TypeScript sources; see nodeArgsFor) as a child of the test,
 * in `cwd`, with its NDJSON log collected.
 */
export class SupervisorProcess {
  readonly records: LogRecord[] = [];
  /** stdout lines that were not JSON log records: the merged stream should have none. */
  readonly strayLines: string[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private readonly waiters = new Set<() => void>();

  constructor(cwd: string, args: string[], env: NodeJS.ProcessEnv) {
    const inherited = { ...process.env };
    for (const name of ['DATABASE_URL', 'REDIS_URL', 'S3_BUCKET', 'S3_ENDPOINT', 'KEY_ENCRYPTION_SECRET', 'COOKIE_SECURE', 'OBJECT_STORE_DIR']) delete inherited[name];
    this.child = spawn(process.execPath, [...nodeArgsFor(START_SCRIPT), ...args], {
      cwd,
      env: { ...inherited, SWC_NODE_PROJECT: path.join(REPO_ROOT, 'tsconfig.json'), LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    readline.createInterface({ input: this.child.stdout! }).on('line', (line) => {
      try {
        this.records.push(JSON.parse(line) as LogRecord);
      } catch {
        this.strayLines.push(line);
      }
      this.waiters.forEach((wake) => wake());
    });
    readline.createInterface({ input: this.child.stderr! }).on('line', (line) => this.stderr.push(line));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    this.exited.then(() => this.waiters.forEach((wake) => wake()));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves with the first record matching; rejects if the supervisor exits first. */
  waitFor(predicate: (record: LogRecord) => boolean, timeoutMs = 90_000): Promise<LogRecord> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`no matching log record within ${timeoutMs} ms:\n${this.transcript()}`)), timeoutMs);
      const check = (): void => {
        const found = this.records.find(predicate);
        if (found) finish(undefined, found);
        else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          finish(new Error(`the supervisor exited (${this.child.exitCode ?? this.child.signalCode}) before the expected log record:\n${this.transcript()}`));
        }
      };
      const finish = (error?: Error, record?: LogRecord): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (error) reject(error);
        else resolve(record!);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Every process below the supervisor (servers, apps and their children). */
  descendants(): number[] {
    return descendantPidsOf(this.pid);
  }

  /** Whether the supervisor process is still running. */
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Last resort for a failed test: the supervisor and everything below it. */
  killTree(): void {
    for (const pid of [...this.descendants(), this.pid]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }

  transcript(): string {
    return [...this.records.map((record) => `${record.service}: ${record.msg}${record.err ? ` ${JSON.stringify(record.err)}` : ""}`), ...this.strayLines, ...this.stderr].slice(-60).join('\n');
  }
}
