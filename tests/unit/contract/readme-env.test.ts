/**
 * README's Configuration table against the contract: every variable the services read is
 * listed, nothing else is, and each default written there is the schema's.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { EnvSchema } from '../../../services/contract';

interface Row {
  names: string[];
  defaults: string[];
}

function configurationTable(): Row[] {
  const readme = readFileSync(path.resolve(__dirname, '..', '..', '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Configuration\n'), readme.indexOf('\n## ', readme.indexOf('\n## Configuration\n') + 1));
  return section
    .split('\n')
    .filter((line) => /^\| `[A-Z]/.test(line))
    .map((line) => {
      const [name = '', defaults = ''] = line.split(' | ');
      return { names: [...name.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((match) => match[1]!), defaults: defaults.split(' / ') };
    });
}

const BINARY_UNITS: Record<string, number> = { KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** A default as the README writes it (`16777216 (16 MiB)`, `10 GiB`, `` `disable` ``), or undefined for prose such as "embedded PostgreSQL". */
function writtenDefault(text: string): string | undefined {
  const number = /^(\d+)(?: (KiB|MiB|GiB))?(?:$| \()/.exec(text.trim());
  if (number) return String(Number(number[1]) * (number[2] ? BINARY_UNITS[number[2]]! : 1));
  return /^`([^`]+)`/.exec(text.trim())?.[1];
}

function schemaDefault(name: string): string | undefined {
  const field = EnvSchema.shape[name as keyof typeof EnvSchema.shape] as { safeParse(value: undefined): { success: boolean; data?: unknown } };
  const parsed = field.safeParse(undefined);
  return parsed.success && parsed.data !== undefined && typeof parsed.data !== 'object' ? String(parsed.data) : undefined;
}

describe("README's configuration table", () => {
  const rows = configurationTable();

  it('lists every variable of the contract, and nothing the contract does not read', () => {
    const listed = rows.flatMap((row) => row.names).sort();
    expect(listed).toEqual(Object.keys(EnvSchema.shape).sort());
  });

  it('states each default the schema has as the schema has it', () => {
    const compared: string[] = [];
    for (const row of rows) {
      if (row.names.length !== row.defaults.length) continue;
      row.names.forEach((name, index) => {
        const [written, expected] = [writtenDefault(row.defaults[index]!), schemaDefault(name)];
        // Unset in the schema: the default is the service's or the run's, which prose describes.
        if (written === undefined || expected === undefined) return;
        compared.push(name);
        expect({ name, default: written }).toEqual({ name, default: expected });
      });
    }
    expect(compared.length).toBeGreaterThanOrEqual(40);
  });
});
