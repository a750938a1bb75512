import { execFileSync, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface SystemUser {
  name: string;
  uid: number;
  gid: number;
}

export interface SpawnChildOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  stdio: StdioOptions;
  /** Run as this user instead of us (we must be root). PostgreSQL refuses to run as root. */
  runAs?: SystemUser;
  /**
   * Signal the kernel sends the child if this process dies first, even by SIGKILL
   * (Linux, through util-linux `setpriv`). It is what keeps a crashed test runner or
   * supervisor from leaving servers behind; without `setpriv` the exit hook below is
   * the only safety net.
   */
  parentDeathSignal?: NodeJS.Signals;
  /**
   * Start the child in a process group of its own, so the terminal's Ctrl-C reaches only
   * us and we decide the order in which children stop.
   */
  ownProcessGroup?: boolean;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Looks a system user up by name; undefined when it does not exist. */
export function lookupSystemUser(name: string): SystemUser | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { name, uid, gid } : undefined;
  } catch {
    return undefined;
  }
}

/** Absolute path of an executable found on PATH, or undefined. */
export function findExecutable(name: string, searchPath = process.env.PATH ?? ''): string | undefined {
  for (const directory of searchPath.split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(directory, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

const setpriv = process.platform === 'linux' ? findExecutable('setpriv') : undefined;

/** Every child spawned through spawnChild that has not exited yet. */
const liveChildren = new Set<ChildProcess>();

function killLiveChildren(): void {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}
process.once('exit', killLiveChildren);

/**
 * Spawns a child that is tracked until it exits and killed if this process exits first.
 * With `setpriv` available the child is exec'ed in place (its pid is the server's pid,
 * so signals reach the server itself, not a wrapper).
 */
export function spawnChild(command: string, args: readonly string[], options: SpawnChildOptions): ChildProcess {
  const wrapperArgs: string[] = [];
  if (setpriv && options.parentDeathSignal) wrapperArgs.push(`--pdeathsig=${options.parentDeathSignal.replace(/^SIG/, '')}`);
  if (setpriv && options.runAs) {
    wrapperArgs.push(`--reuid=${options.runAs.uid}`, `--regid=${options.runAs.gid}`, '--init-groups');
  }
  const useWrapper = setpriv !== undefined && wrapperArgs.length > 0;
  const child = useWrapper
    ? spawn(setpriv, [...wrapperArgs, '--', command, ...args], { env: options.env, cwd: options.cwd, stdio: options.stdio, detached: options.ownProcessGroup })
    : spawn(command, args, {
        env: options.env,
        cwd: options.cwd,
        stdio: options.stdio,
        detached: options.ownProcessGroup,
        ...(options.runAs ? { uid: options.runAs.uid, gid: options.runAs.gid } : {}),
      });
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  // A spawn failure (ENOENT, EACCES) is reported through 'exit'/'error' to the owner; keep
  // it from becoming an uncaught 'error' event when the owner only awaits 'exit'.
  child.once('error', () => liveChildren.delete(child));
  return child;
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves when the child has exited; false when `timeoutMs` passed first. */
export function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (hasExited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/**
 * Sends `signal`, then escalates through `escalation` (each after its own wait) until
 * the child is gone. Returns the signal that finally stopped it.
 */
export async function stopChild(
  child: ChildProcess,
  steps: readonly { signal: NodeJS.Signals; waitMs: number }[],
): Promise<NodeJS.Signals | undefined> {
  for (const step of steps) {
    if (hasExited(child)) return undefined;
    child.kill(step.signal);
    if (await waitForExit(child, step.waitMs)) return step.signal;
  }
  child.kill('SIGKILL');
  await waitForExit(child, 10_000);
  return 'SIGKILL';
}

/** Every process's parent, from one pass over /proc (Linux); empty elsewhere. */
function parentPids(): Map<number, number> {
  const parents = new Map<number, number>();
  if (process.platform !== 'linux') return parents;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 is the parent pid; the command name (field 2) may contain spaces, so parse after ')'.
      const afterName = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parents.set(Number(entry), Number(afterName[1]));
    } catch {
      // exited while we listed
    }
  }
  return parents;
}

/** Direct children of `pid` (Linux /proc); empty elsewhere. */
export function childPidsOf(pid: number): number[] {
  return [...parentPids()].filter(([, parent]) => parent === pid).map(([child]) => child);
}

/**
 * Every process below `pid`, children before their own (Linux /proc); empty elsewhere. One
 * pass over /proc for the whole tree: a walk calling childPidsOf per process reads every
 * process's stat once per process in the tree.
 */
export function descendantPidsOf(pid: number): number[] {
  const childrenOf = new Map<number, number[]>();
  for (const [child, parent] of parentPids()) childrenOf.set(parent, [...(childrenOf.get(parent) ?? []), child]);
  const found: number[] = [];
  const visit = (parent: number): void => {
    for (const child of childrenOf.get(parent) ?? []) {
      found.push(child);
      visit(child);
    }
  };
  visit(pid);
  return found;
}

/** True while `pid` runs. A zombie (exited, not yet reaped by its reparented parent) counts as gone. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (process.platform !== 'linux') return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Waits until none of `pids` is alive; false on timeout. */
export async function waitForPidsGone(pids: readonly number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!pids.some(isProcessAlive)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
