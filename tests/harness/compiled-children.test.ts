import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { COMPILED_ROOT_ENV, nodeArgsFor } from './compiled-children';
import { useSharedServices } from './shared';

const execFileAsync = promisify(execFile);
const REPO_ROOT = path.resolve(__dirname, '..', '..');
const CLI_SOURCE = path.join(REPO_ROOT, 'services', 'cli', 'index.ts');

describe('child processes of the tests (compiled-children)', () => {
  const configured = process.env[COMPILED_ROOT_ENV];
  afterEach(() => {
    if (configured === undefined) delete process.env[COMPILED_ROOT_ENV];
    else process.env[COMPILED_ROOT_ENV] = configured;
  });

  it('this run transpiled the sources once, and children run that JavaScript', () => {
    expect(configured).toBeDefined();
    const [flag, entry] = nodeArgsFor('services/cli/index.ts');
    expect(flag).toBe('--enable-source-maps');
    expect(entry).toBe(path.join(configured!, 'services', 'cli', 'index.js'));
    expect(existsSync(entry!)).toBe(true);
  });

  it('falls back to the TypeScript source through @swc-node/register without a tree, or when the tree lacks the file', async () => {
    delete process.env[COMPILED_ROOT_ENV];
    const fromSource = nodeArgsFor(CLI_SOURCE);
    expect(fromSource).toEqual(['-r', require.resolve('@swc-node/register'), CLI_SOURCE]);

    const emptyTree = await mkdtemp(path.join(os.tmpdir(), 'pk-empty-tree-'));
    try {
      process.env[COMPILED_ROOT_ENV] = emptyTree;
      expect(nodeArgsFor(CLI_SOURCE)).toEqual(fromSource);
    } finally {
      await rm(emptyTree, { recursive: true, force: true });
    }
    // The fallback runs: the CLI answers its help from the sources.
    const { stdout } = await execFileAsync(process.execPath, [...fromSource, '--help'], { cwd: REPO_ROOT });
    expect(stdout).toMatch(/^Usage: platform/m);
  });

  it('the transpiled CLI runs as the source does, and finds the checkout from inside the tree', async () => {
    // Migrations live in the checkout (services/migrations), found from the running file upwards.
    const { databaseUrl } = await useSharedServices();
    const run = (args: string[]) =>
      execFileAsync(process.execPath, [...args, 'migrate', '--status', '--json'], { cwd: REPO_ROOT, env: { PATH: process.env.PATH, DATABASE_URL: databaseUrl } }).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        ({ code, stdout, stderr }: { code: number; stdout: string; stderr: string }) => ({ code, stdout, stderr }),
      );
    const [compiled, source] = await Promise.all([run(nodeArgsFor(CLI_SOURCE)), run(['-r', require.resolve('@swc-node/register'), CLI_SOURCE])]);
    expect(compiled).toEqual(source);
    expect(compiled.code).toBe(0);
    expect((JSON.parse(compiled.stdout) as { pending: string[]; migrations: unknown[] }).migrations.length).toBeGreaterThan(0);
  });

  it('takes the tree from the environment, for an entry named relative to the checkout', async () => {
    const tree = await mkdtemp(path.join(os.tmpdir(), 'pk-tree-'));
    try {
      await mkdir(path.join(tree, 'services', 'cli'), { recursive: true });
      await writeFile(path.join(tree, 'services', 'cli', 'index.js'), '');
      process.env[COMPILED_ROOT_ENV] = tree;
      expect(nodeArgsFor('services/cli/index.ts')).toEqual(['--enable-source-maps', path.join(tree, 'services', 'cli', 'index.js')]);
    } finally {
      await rm(tree, { recursive: true, force: true });
    }
  });
});
