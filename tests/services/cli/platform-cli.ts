import { spawn } from 'node:child_process';
import path from 'node:path';
import { nodeArgsFor } from '../../harness/compiled-children';

const ROOT = path.resolve(__dirname, '../../..');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /**
   * Close our end of the CLI's stdout pipe before it writes anything, as `platform … | head`
   * does once head has read enough: every write the CLI makes then fails with EPIPE.
   */
  readerGone?: boolean;
  /** Kill the CLI (SIGKILL) if it has not exited by then: `code` is then null, and the test says it hung instead of timing out with the process left behind. */
  timeoutMs?: number;
}

/** The environment a `platform` command needs to reach a test's servers (`env`: an engine or API fixture's), logging errors only. */
export function cliEnvFor(env: { DATABASE_URL: string; REDIS_URL: string; QUEUE_PREFIX: string; OBJECT_STORE_DIR?: string }): Record<string, string> {
  return {
    DATABASE_URL: env.DATABASE_URL,
    REDIS_URL: env.REDIS_URL,
    QUEUE_PREFIX: env.QUEUE_PREFIX,
    ...(env.OBJECT_STORE_DIR !== undefined && { OBJECT_STORE_DIR: env.OBJECT_STORE_DIR }),
    LOG_LEVEL: 'error',
  };
}

/** Runs the real `platform` entry point as an operator would, in its own process, with only the given environment (and `stdin` piped in, when given). */
export function platform(args: string[], env: Record<string, string | undefined>, stdin?: string | Buffer, options: CliOptions = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgsFor(path.join(ROOT, 'services/cli/index.ts')), ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    // The CLI takes far longer to start than this takes, so it finds the pipe closed at its first write.
    if (options.readerGone) child.stdout.destroy();
    child.stdin.end(stdin ?? '');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
