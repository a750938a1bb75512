import { existsSync, readdirSync, rmSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { transformFile, type Options } from '@swc/core';
import { isProcessAlive } from '../../services/local/child';

const REPO_ROOT = path.resolve(__dirname, '..', '..');

/**
 * Where globalSetup put this run's transpiled tree; unset outside a jest run (or when
 * transpiling failed), and then children run from the TypeScript sources.
 */
export const COMPILED_ROOT_ENV = 'PK_TEST_COMPILED_ROOT';

const TREES_DIR = path.join(REPO_ROOT, '.tmp');
const TREE_PREFIX = 'test-build-';

/** Trees of jest runs that were killed before their teardown (named after the run's pid). */
function removeOrphanedTrees(): void {
  if (!existsSync(TREES_DIR)) return;
  for (const name of readdirSync(TREES_DIR)) {
    const pid = Number(name.slice(TREE_PREFIX.length));
    if (name.startsWith(TREE_PREFIX) && Number.isInteger(pid) && pid !== process.pid && !isProcessAlive(pid)) {
      rmSync(path.join(TREES_DIR, name), { recursive: true, force: true });
    }
  }
}

/** The folders whose TypeScript a child process the tests start may load. */
const SOURCE_FOLDERS = ['services', 'tests'];
/** Browser code, built by vite, never loaded by a Node process. */
const SKIPPED_FOLDER = path.join('services', 'console');

/** As jest transforms the same files in process (jest.config.js), so a child runs what a test imports. */
const SWC_OPTIONS: Options = {
  jsc: { target: 'es2022', parser: { syntax: 'typescript' } },
  module: { type: 'commonjs' },
  sourceMaps: 'inline',
  swcrc: false,
  configFile: false,
};

function typescriptFiles(): string[] {
  const files: string[] = [];
  for (const folder of SOURCE_FOLDERS) {
    for (const entry of readdirSync(path.join(REPO_ROOT, folder), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !entry.name.endsWith('.ts') || entry.name.endsWith('.d.ts') || entry.name.endsWith('.test.ts')) continue;
      const relative = path.relative(REPO_ROOT, path.join(entry.parentPath, entry.name));
      if (relative.startsWith(`${SKIPPED_FOLDER}${path.sep}`)) continue;
      files.push(relative);
    }
  }
  return files;
}

/**
 * Transpiles the sources a child process may load into `.tmp/test-build-<pid>/`, inside the
 * checkout so that its modules resolve node_modules and find package.json as the sources
 * do, once per jest run. Each child the tests start (the platform CLI, workers, `npm start`'s
 * supervisor and the API and worker it runs) otherwise compiles every file it loads again
 * through @swc-node/register: about 0.6 s of CPU per process on a 2-core machine, some
 * hundreds of processes per run. Answers the root of the tree.
 */
export async function transpileForChildren(): Promise<string> {
  removeOrphanedTrees();
  const root = path.join(TREES_DIR, `${TREE_PREFIX}${process.pid}`);
  await rm(root, { recursive: true, force: true });
  const files = typescriptFiles();
  const chunk = 32;
  for (let start = 0; start < files.length; start += chunk) {
    await Promise.all(
      files.slice(start, start + chunk).map(async (relative) => {
        const { code } = await transformFile(path.join(REPO_ROOT, relative), { ...SWC_OPTIONS, filename: relative });
        const target = path.join(root, relative.replace(/\.ts$/, '.js'));
        await mkdir(path.dirname(target), { recursive: true });
        await writeFile(target, code);
      }),
    );
  }
  return root;
}

export async function removeTranspiled(root: string | undefined): Promise<void> {
  if (root) await rm(root, { recursive: true, force: true });
}

/**
 * How `node` runs a TypeScript entry point of this checkout in a child process: its
 * transpiled JavaScript when this jest run has the tree, else the source through
 * @swc-node/register (the fallback, also what a helper started outside jest gets).
 */
export function nodeArgsFor(entry: string): string[] {
  const source = path.resolve(REPO_ROOT, entry);
  const root = process.env[COMPILED_ROOT_ENV];
  if (root) {
    const compiled = path.join(root, path.relative(REPO_ROOT, source)).replace(/\.ts$/, '.js');
    if (existsSync(compiled)) return ['--enable-source-maps', compiled];
  }
  return ['-r', require.resolve('@swc-node/register'), source];
}
