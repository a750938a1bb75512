import type { ChildProcess } from 'node:child_process';
import { hasExited, stopChild, type ExitStatus } from './child';
import { forEachLine } from './log-stream';

const RECENT_LINES = 40;

export interface ServerProcessHooks {
  /** Every line the server prints. */
  onLine?: (line: string) => void;
  /** The server exited without being asked to (crash, OOM kill). */
  onUnexpectedExit?: (exit: ExitStatus) => void;
}

/**
 * The lifecycle PostgreSQL and Redis share as our children: follow the output (keeping
 * the last lines for error messages), wait until ready, tell an exit nobody asked for
 * from a requested stop.
 */
export class ServerProcess {
  private child: ChildProcess | undefined;
  private stopRequested = false;
  private readonly recentLines: string[] = [];

  constructor(private readonly hooks: ServerProcessHooks) {}

  /** The running child, or undefined. */
  get running(): ChildProcess | undefined {
    return this.child && !hasExited(this.child) ? this.child : undefined;
  }

  get pid(): number | undefined {
    return this.running?.pid;
  }

  /** Adopts a freshly spawned server and resolves once `ready` says it serves. */
  async adopt(child: ChildProcess, ready: (child: ChildProcess) => Promise<void>): Promise<void> {
    this.child = child;
    this.stopRequested = false;
    this.recentLines.length = 0;
    for (const stream of [child.stdout, child.stderr]) if (stream) forEachLine(stream, (line) => this.remember(line));
    await ready(child);
    const reportUnexpectedExit = (): void => {
      if (!this.stopRequested) this.hooks.onUnexpectedExit?.({ code: child.exitCode, signal: child.signalCode });
    };
    if (hasExited(child)) reportUnexpectedExit();
    else child.once('exit', reportUnexpectedExit);
  }

  /** Marks the coming exit as requested and returns the child to stop, if it runs. */
  requestStop(): ChildProcess | undefined {
    const child = this.running;
    if (child) this.stopRequested = true;
    return child;
  }

  async stop(steps: Parameters<typeof stopChild>[1]): Promise<void> {
    const child = this.requestStop();
    if (child) await stopChild(child, steps);
  }

  /** The last lines the server printed, for error messages. */
  recentOutput(): string {
    return this.recentLines.join('\n');
  }

  private remember(line: string): void {
    this.recentLines.push(line);
    if (this.recentLines.length > RECENT_LINES) this.recentLines.shift();
    this.hooks.onLine?.(line);
  }
}
