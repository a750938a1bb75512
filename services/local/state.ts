import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { findFreePort, isPortFree } from './free-port';

/**
 * What the local run keeps under `.data/` between runs besides the servers' data:
 * generated secrets (mode 0600, never logged) and the ports it chose, so a second
 * `npm start` serves PostgreSQL and Redis where the first did whenever those ports are free.
 */
export class LocalState {
  constructor(readonly root: string) {}

  /** Creates the directory; world-traversable because PostgreSQL runs as its own system user below it. */
  async prepare(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    await chmod(this.root, 0o755);
  }

  path(...parts: string[]): string {
    return path.join(this.root, ...parts);
  }

  /**
   * Writes `cli.env`: the connection settings of this run, so the `platform` CLI can be
   * pointed at it (`set -a; . .data/cli.env; set +a`). Mode 0600: the URL carries the
   * database password.
   */
  async writeCliEnv(values: Record<string, string | undefined>): Promise<void> {
    const lines = Object.entries(values)
      .filter((entry): entry is [string, string] => entry[1] !== undefined)
      .map(([name, value]) => `${name}='${value.replaceAll("'", "'\\''")}'`);
    const file = this.path('cli.env');
    await writeFile(file, `${lines.join('\n')}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
  }

  /** A random secret generated on first use and read back afterwards. */
  async secret(name: string): Promise<string> {
    const file = this.path(name);
    try {
      const existing = (await readFile(file, 'utf8')).trim();
      if (existing) return existing;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const generated = randomBytes(48).toString('base64url');
    await writeFile(file, `${generated}\n`, { mode: 0o600 });
    return generated;
  }

  /** The port used last time for `name` (or `preferred` the first time) if it is free now, else a free one. */
  async port(name: string, preferred?: number): Promise<number> {
    const file = this.path('ports.json');
    const remembered = readPorts(file);
    const candidate = remembered[name] ?? preferred;
    const port = candidate !== undefined && (await isPortFree(candidate)) ? candidate : await findFreePort();
    if (remembered[name] !== port) await writeFile(file, `${JSON.stringify({ ...readPorts(file), [name]: port }, null, 2)}\n`);
    return port;
  }
}

function readPorts(file: string): Record<string, number> {
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (parsed === null || typeof parsed !== 'object') return {};
    return Object.fromEntries(Object.entries(parsed).filter((entry): entry is [string, number] => Number.isInteger(entry[1])));
  } catch {
    return {};
  }
}
