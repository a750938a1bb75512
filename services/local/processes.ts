import type { ChildProcess } from 'node:child_process';
import type { Logger } from '../core/logger';
import { hasExited, spawnChild, stopChild, waitForExit, type ExitStatus } from './child';
import { forEachLine, type MergedLog } from './log-stream';
import type { RestartPolicy } from './restart-policy';

export interface AppSpec {
  /** Service name: the log tag and the name in messages. */
  name: string;
  command: string;
  args: string[];
  /** The environment of each start: called again before every restart (a port taken meanwhile is chosen anew). */
  environment(): Promise<NodeJS.ProcessEnv>;
  /** Hears what the app sends over an IPC channel, which it gets only when this is set. */
  onMessage?(message: unknown): void;
  /** How long SIGTERM may take (the app's own drain grace) before SIGKILL. */
  stopTimeoutMs: number;
  restartPolicy: RestartPolicy;
  /** Asked as a pod's startup and liveness probes would be; unset: only an exit restarts the app. */
  health?: HealthProbes;
}

export interface ProbeTiming {
  periodMs: number;
  timeoutMs: number;
  /** Failures in a row after which the app is killed, and so restarted. */
  failureThreshold: number;
}

export interface HealthProbes {
  /** Where this start of the app answers its health check, from the environment it was started with. */
  url(env: NodeJS.ProcessEnv): string;
  /** Until the app first answers. */
  startup: ProbeTiming;
  /** Once it has answered. */
  liveness: ProbeTiming;
}

/** Why one health check failed; undefined when the app answered 2xx or 3xx, as Kubernetes counts it. */
async function checkHealth(url: string, timeoutMs: number): Promise<string | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    await response.body?.cancel();
    return response.status >= 200 && response.status < 400 ? undefined : `HTTP ${response.status}`;
  } catch (error) {
    return (error as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (error as Error).message;
  }
}

export interface AppHooks {
  log: Logger;
  /** The app crashed too often to go on: the run should stop, with this message. */
  onGiveUp(message: string): void;
}

function describeExit(exit: ExitStatus): string {
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}

/**
 * A Node service (api, worker) run as our child: its stdout/stderr go to the merged log
 * under its name; a crash (any exit nobody asked for) is logged with its exit code or
 * signal and the app is started again after its restart policy's delay, until the policy
 * gives up; it stops on SIGTERM within its grace period or is killed.
 */
export class AppProcess {
  private child: ChildProcess | undefined;
  private stopRequested = false;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly spec: AppSpec,
    private readonly merged: MergedLog,
    private readonly hooks: AppHooks,
  ) {}

  get name(): string {
    return this.spec.name;
  }

  async start(): Promise<void> {
    if (this.stopRequested) return;
    const env = await this.spec.environment();
    if (this.stopRequested) return;
    const child = spawnChild(this.spec.command, this.spec.args, {
      env,
      stdio: this.spec.onMessage ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
      ownProcessGroup: true,
      // If the supervisor dies, the app still drains instead of running on unsupervised.
      parentDeathSignal: 'SIGTERM',
    });
    this.child = child;
    if (child.stdout) forEachLine(child.stdout, (line) => this.merged.serviceLine(this.spec.name, line, 'info'));
    if (child.stderr) forEachLine(child.stderr, (line) => this.merged.serviceLine(this.spec.name, line, 'warn'));
    child.once('error', (error) => this.merged.record(this.spec.name, 'error', `could not start: ${error.message}`));
    if (this.spec.onMessage) child.on('message', this.spec.onMessage);
    child.once('exit', (code, signal) => {
      if (!this.stopRequested) this.crashed({ code, signal });
    });
    if (this.spec.health) void this.watchHealth(child, this.spec.health, this.spec.health.url(env));
  }

  /**
   * Kills the app once its health checks failed as many times in a row as the probe of
   * its phase allows (startup until it first answers, liveness from then on), so a process
   * that hangs without exiting (a blocked event loop, a stuck Redis connection, SIGSTOP) is
   * restarted through the crash path, as the kubelet restarts a pod's container.
   */
  private async watchHealth(child: ChildProcess, probes: HealthProbes, url: string): Promise<void> {
    let phase: 'startup' | 'liveness' = 'startup';
    let failures = 0;
    while (!(await waitForExit(child, probes[phase].periodMs)) && !this.stopRequested) {
      const failure = await checkHealth(url, probes[phase].timeoutMs);
      if (failure === undefined) {
        phase = 'liveness';
        failures = 0;
        continue;
      }
      failures += 1;
      if (failures < probes[phase].failureThreshold || this.stopRequested || hasExited(child)) continue;
      this.hooks.log.error(
        { url, phase, failures, lastFailure: failure },
        `${this.spec.name} failed its ${phase} check ${failures} times in a row (last: ${failure}); killing it so it is restarted`,
      );
      child.kill('SIGKILL');
      return;
    }
  }

  get running(): boolean {
    return this.child !== undefined && !hasExited(this.child);
  }

  async stop(): Promise<void> {
    this.stopRequested = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (!this.child || hasExited(this.child)) return;
    const stoppedBy = await stopChild(this.child, [{ signal: 'SIGTERM', waitMs: this.spec.stopTimeoutMs }]);
    if (stoppedBy === 'SIGKILL') this.merged.record(this.spec.name, 'warn', `did not stop within ${this.spec.stopTimeoutMs} ms of SIGTERM; killed`);
  }

  async kill(): Promise<void> {
    this.stopRequested = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (!this.child || hasExited(this.child)) return;
    await stopChild(this.child, []);
  }

  private crashed(exit: ExitStatus): void {
    const { log } = this.hooks;
    const decision = this.spec.restartPolicy.crashed(Date.now());
    const how = describeExit(exit);
    if (decision.action === 'give-up') {
      const message = `${this.spec.name} crashed ${decision.crashesInWindow} times within ${decision.windowMs / 1_000} s (last: ${how}): not restarting it; see its log lines above`;
      log.fatal({ code: exit.code, signal: exit.signal }, message);
      this.hooks.onGiveUp(message);
      return;
    }
    log.error(
      { code: exit.code, signal: exit.signal, restartInMs: decision.delayMs, crashesInWindow: decision.crashesInWindow },
      `${this.spec.name} exited unexpectedly (${how}); restarting in ${decision.delayMs} ms`,
    );
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.start().catch((error: unknown) => {
        log.fatal({ err: error }, `${this.spec.name} could not be restarted`);
        this.hooks.onGiveUp(`${this.spec.name} could not be restarted`);
      });
    }, decision.delayMs);
  }
}

interface StopStep {
  name: string;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

/** A second signal this soon after the first is the same keypress delivered twice (terminal and npm both forward it). */
const DUPLICATE_SIGNAL_WINDOW_MS = 1_000;

/**
 * Owns the shutdown of the local run. Whatever starts registers how to stop it; shutdown
 * stops in reverse order of start (apps, then Redis, then PostgreSQL), each step even
 * when an earlier one failed. The first SIGINT/SIGTERM starts it; a second one forces
 * (SIGKILL to whatever is left).
 */
export class Supervisor {
  private readonly steps: StopStep[] = [];
  private readonly stopController = new AbortController();
  private shutdown: Promise<void> | undefined;
  private firstSignalAt = 0;
  private exitStatus = 0;

  constructor(private readonly log: Logger) {}

  /** Aborted as soon as shutdown begins: startup steps stop waiting. */
  get stopping(): AbortSignal {
    return this.stopController.signal;
  }

  get exitCode(): number {
    return this.exitStatus;
  }

  /**
   * Registers something to stop at shutdown (stopped after everything registered later).
   * Refused (throws) once shutdown has begun, so a startup step that was still running
   * when Ctrl-C came cannot start something nobody would stop.
   */
  onShutdown(step: StopStep): void {
    this.stopping.throwIfAborted();
    this.steps.push(step);
  }

  /** Begins the shutdown (once) and resolves when everything registered has stopped. */
  stop(reason: string, exitCode: number): Promise<void> {
    this.exitStatus = Math.max(this.exitStatus, exitCode);
    if (this.shutdown) return this.shutdown;
    this.log.info({ reason }, 'shutting down');
    this.stopController.abort(new Error(reason));
    this.shutdown = (async () => {
      for (const step of [...this.steps].reverse()) {
        try {
          await step.stop();
          this.log.info(`${step.name} stopped`);
        } catch (error) {
          this.log.error({ err: error }, `${step.name} did not stop cleanly`);
        }
      }
    })();
    return this.shutdown;
  }

  /** Resolves once a shutdown has begun and finished. */
  async stopped(): Promise<void> {
    // Signal listeners do not keep Node's event loop alive: with external PostgreSQL and Redis
    // and --infra-only nothing else would, and the process would exit at once instead of
    // waiting for Ctrl-C (or die mid-exit by the very SIGTERM meant to stop it).
    const keepAlive = setInterval(() => undefined, 2 ** 30);
    try {
      if (!this.stopping.aborted) await new Promise((resolve) => this.stopping.addEventListener('abort', resolve, { once: true }));
      await this.shutdown;
    } finally {
      clearInterval(keepAlive);
    }
  }

  /** A server the run depends on (PostgreSQL, Redis) exited on its own: everything else goes down with it. */
  childExited(name: string, exit: ExitStatus): void {
    this.log.error({ code: exit.code, signal: exit.signal }, `${name} exited unexpectedly; the run stops with it (npm start starts it all again, over the same data)`);
    void this.stop(`${name} exited`, 1);
  }

  handleSignals(): void {
    const onSignal = (signal: NodeJS.Signals): void => {
      const now = Date.now();
      if (!this.shutdown) {
        this.firstSignalAt = now;
        void this.stop(`received ${signal}`, 0);
        return;
      }
      if (now - this.firstSignalAt < DUPLICATE_SIGNAL_WINDOW_MS) return;
      this.log.warn(`received ${signal} again: killing everything now`);
      void this.force();
    };
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
  }

  private async force(): Promise<void> {
    await Promise.allSettled(this.steps.map((step) => step.kill()));
    process.exit(130);
  }
}
