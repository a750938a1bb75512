import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { SCRAPE_TARGETS } from '../contract';
import type { Logger } from '../core/logger';
import { findExecutable, hasExited, spawnChild, waitForExit, type ExitStatus } from './child';
import { ServerProcess } from './server-process';

/** What `npm start -- --observe` scrapes: host:port of the api and the worker's metrics listener. */
export interface ObservedTargets {
  api: string;
  worker: string;
}
export type ObservedService = keyof ObservedTargets;

const OBSERVED_SERVICES: readonly ObservedService[] = ['api', 'worker'];

/** The file that tells Prometheus where one service listens now (file-based discovery). */
function targetsFile(targetsDir: string, service: ObservedService): string {
  return path.join(targetsDir, `${service}.json`);
}

/**
 * Prometheus' configuration for the local run: the api and the worker under the scrape job
 * names the cluster uses (so the generated rules and dashboards' queries work unchanged),
 * and the generated rule files. Each job finds its target in a file (`targetsFile`) that
 * Prometheus watches, because the local run restarts a crashed worker on whatever metrics
 * port is free then. JSON is YAML, which Prometheus reads.
 */
export function localPrometheusConfig(targetsDir: string, rulesDir: string, interval = '15s'): Record<string, unknown> {
  return {
    global: { scrape_interval: interval, evaluation_interval: interval, external_labels: { cluster: 'local' } },
    rule_files: [path.join(rulesDir, '*.yaml')],
    scrape_configs: OBSERVED_SERVICES.map((name) => ({
      job_name: SCRAPE_TARGETS[name].job,
      metrics_path: SCRAPE_TARGETS[name].path,
      file_sd_configs: [{ files: [targetsFile(targetsDir, name)] }],
    })),
  };
}

/** The repository root (package.json), from the sources or the compiled tree. */
function repositoryRoot(): string {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('package.json not found above services/local');
    dir = parent;
  }
  return dir;
}

/**
 * Writes the rule files the stacks ship into `outDir`, through `npm run rules` (its script
 * lives in tools/, beside the Pulumi program's generator; it needs the dev dependencies that
 * a checkout running `npm start` has).
 */
export async function writeGeneratedRules(outDir: string): Promise<string[]> {
  const root = repositoryRoot();
  await promisify(execFile)(process.execPath, ['-r', require.resolve('@swc-node/register'), path.join(root, 'tools/observability/rules.ts'), '--out', outDir, '--stack', 'dev'], { cwd: root });
  return (await readdir(path.join(outDir, 'rules'))).filter((f) => f.endsWith('.yaml'));
}

export interface LocalPrometheusOptions {
  /** Path of Debian's `prometheus`; found on PATH by default. */
  command?: string;
  port: number;
  /** Configuration, rules and the TSDB live here. */
  dir: string;
  targets: ObservedTargets;
  /** Scrape and rule evaluation interval. Default 15s. */
  interval?: string;
  onLine?: (line: string) => void;
  onUnexpectedExit?: (exit: ExitStatus) => void;
  parentDeathSignal?: NodeJS.Signals;
  ownProcessGroup?: boolean;
}

/** Where Prometheus's UIs put the alerts page, the current one first. */
const ALERTS_PAGES = ['/alerts', '/classic/alerts'] as const;

/** Debian's prometheus binary, if installed. */
export function findPrometheus(): string | undefined {
  return findExecutable('prometheus', `${process.env.PATH ?? ''}:/usr/bin`);
}

/** A private Prometheus on 127.0.0.1 scraping the local api and worker, with the generated rules. */
export class LocalPrometheus {
  readonly port: number;
  readonly dir: string;
  private readonly server: ServerProcess;
  private readonly targets: ObservedTargets;

  constructor(private readonly options: LocalPrometheusOptions) {
    this.port = options.port;
    this.dir = path.resolve(options.dir);
    this.server = new ServerProcess(options);
    this.targets = { ...options.targets };
  }

  private get targetsDir(): string {
    return path.join(this.dir, 'targets');
  }

  /**
   * Points a job at where its service listens now (the worker after a restart on another
   * port). Prometheus notices the file change on its own; the file is replaced whole so it
   * never reads half of one.
   */
  async retarget(service: ObservedService, target: string): Promise<void> {
    this.targets[service] = target;
    await this.writeTargets(service);
  }

  private async writeTargets(service: ObservedService): Promise<void> {
    const file = targetsFile(this.targetsDir, service);
    await writeFile(`${file}.tmp`, `${JSON.stringify([{ targets: [this.targets[service]] }])}\n`);
    await rename(`${file}.tmp`, file);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.server.pid;
  }

  /**
   * The address of the alerts page this Prometheus serves. Debian's package ships only the
   * classic UI (`/classic/alerts`; `/alerts` answers 404), an upstream build the React one
   * (`/alerts`), so the running server is asked rather than its version guessed.
   */
  async alertsPage(): Promise<string> {
    for (const page of ALERTS_PAGES) {
      const url = `${this.url}${page}`;
      try {
        if ((await fetch(url, { signal: AbortSignal.timeout(2_000) })).ok) return url;
      } catch {
        // not this one
      }
    }
    // The API lists the same alerts wherever the UI lives.
    return `${this.url}/api/v1/alerts`;
  }

  async start(options: { readyTimeoutMs?: number } = {}): Promise<void> {
    if (this.pid !== undefined) return;
    const command = this.options.command ?? findPrometheus();
    if (!command) throw new Error('prometheus is not installed (Debian: apt-get install prometheus)');
    const rulesDir = path.join(this.dir, 'generated', 'rules');
    await mkdir(path.join(this.dir, 'tsdb'), { recursive: true });
    await mkdir(this.targetsDir, { recursive: true });
    for (const service of OBSERVED_SERVICES) await this.writeTargets(service);
    const configFile = path.join(this.dir, 'prometheus.yml');
    await writeFile(configFile, `${JSON.stringify(localPrometheusConfig(this.targetsDir, rulesDir, this.options.interval), null, 2)}\n`);
    const child = spawnChild(
      command,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${path.join(this.dir, 'tsdb')}`,
        '--storage.tsdb.retention.time=3d',
        `--web.listen-address=127.0.0.1:${this.port}`,
        '--web.enable-lifecycle',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], cwd: this.dir, parentDeathSignal: this.options.parentDeathSignal, ownProcessGroup: this.options.ownProcessGroup },
    );
    await this.server.adopt(child, (started) => this.waitUntilReady(started, options.readyTimeoutMs ?? 30_000));
  }

  /** SIGTERM: Prometheus closes its TSDB cleanly. */
  async stop(): Promise<void> {
    await this.server.stop([{ signal: 'SIGTERM', waitMs: 20_000 }]);
  }

  async kill(): Promise<void> {
    const child = this.server.requestStop();
    if (!child) return;
    child.kill('SIGKILL');
    await waitForExit(child, 10_000);
  }

  private async waitUntilReady(child: ChildProcess, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (hasExited(child)) throw new Error(`prometheus exited during startup (code ${child.exitCode}):\n${this.server.recentOutput()}`);
      try {
        if ((await fetch(`${this.url}/-/ready`, { signal: AbortSignal.timeout(1_000) })).ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`prometheus was not ready within ${timeoutMs} ms:\n${this.server.recentOutput()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** What the local run hands `observe`: where to keep data, how to log, and its supervisor's hooks. */
export interface ObserveContext {
  dir: string;
  port: number;
  targets: ObservedTargets;
  log: Logger;
  onLine: (line: string) => void;
  onUnexpectedExit: (exit: ExitStatus) => void;
  onShutdown: (step: { name: string; stop: () => Promise<void>; kill: () => Promise<void> }) => void;
}

/**
 * `npm start -- --observe`: Debian's Prometheus, when installed, scraping the api and the
 * worker with the generated rules, so alerts and queries can be tried locally. Without
 * the binary it says how to get it and the rest of the run goes on.
 */
export async function observe(ctx: ObserveContext): Promise<LocalPrometheus | undefined> {
  if (!findPrometheus()) {
    ctx.log.warn('--observe: prometheus is not installed, so nothing scrapes the services (Debian/Ubuntu: apt-get install --no-install-recommends prometheus)');
    return undefined;
  }
  const generated = path.join(ctx.dir, 'generated');
  const rules = await writeGeneratedRules(generated);
  const prometheus = new LocalPrometheus({ port: ctx.port, dir: ctx.dir, targets: ctx.targets, onLine: ctx.onLine, onUnexpectedExit: ctx.onUnexpectedExit, parentDeathSignal: 'SIGTERM', ownProcessGroup: true });
  ctx.onShutdown({ name: 'prometheus', stop: () => prometheus.stop(), kill: () => prometheus.kill() });
  await prometheus.start();
  ctx.log.info({ url: prometheus.url, ruleFiles: rules.length, alerts: await prometheus.alertsPage(), dashboards: path.join(generated, 'dashboards') }, 'Prometheus ready (--observe)');
  return prometheus;
}
