import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import AxeBuilder from '@axe-core/playwright';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { WorkerProcess } from '../../services/worker/main';
import { startApi, type ApiFixture } from '../services/api/fixture';
import { startWorkerFor } from '../services/api/worker-process';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
/** Where the tests leave screenshots of the main screens (kept out of git by .gitignore). */
export const SCREENSHOT_DIR = path.join(__dirname, '.screenshots');
const CHROMIUM_CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((candidate): candidate is string => Boolean(candidate));

/** Builds the console the way `npm run build` does, into a directory of its own. */
export async function buildConsole(): Promise<string> {
  const outDir = await mkdtemp(path.join(os.tmpdir(), 'pk-console-'));
  await promisify(execFile)(path.join(REPO_ROOT, 'node_modules', '.bin', 'vite'), ['build', 'services/console', '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn'], { cwd: REPO_ROOT });
  return outDir;
}

/** Debian's chromium (.ci/run installs it), headless. Root cannot use Chromium's sandbox. */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = CHROMIUM_CANDIDATES.find((candidate) => existsSync(candidate));
  if (!executablePath) throw new Error(`no Chromium at ${CHROMIUM_CANDIDATES.join(', ')}: apt-get install chromium (.ci/run does), or set CHROMIUM_PATH`);
  return chromium.launch({ executablePath, headless: true, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
}

export interface ConsoleStack {
  api: ApiFixture;
  worker: WorkerProcess;
  consoleDir: string;
  close(): Promise<void>;
}

/** The API serving a fresh console build, and a worker, over the harness's PostgreSQL and Redis. */
export async function startConsoleStack(): Promise<ConsoleStack> {
  const consoleDir = await buildConsole();
  const api = await startApi({ consoleDir });
  const worker = await startWorkerFor(api);
  return {
    api,
    worker,
    consoleDir,
    async close() {
      await worker.stop();
      await api.close();
    },
  };
}

/** Serious and critical accessibility violations axe finds on the page as it is now. */
export async function seriousViolations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).analyze();
  return results.violations
    .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
    .map((violation) => `${violation.id} (${violation.impact}): ${violation.help} at ${violation.nodes.map((node) => node.target.join(' ')).join(', ')}`);
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

/** How far the page is wider than the viewport (0 when nothing scrolls sideways). */
export function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
}
