/**
 * README's Job types table against the contract: every type a user may submit is listed,
 * once, with the time limit its definition declares, and nothing internal is.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { publicJobTypes } from '../../../services/contract';

function jobTypesTable(): { type: string; limit: string }[] {
  const readme = readFileSync(path.resolve(__dirname, '..', '..', '..', 'README.md'), 'utf8');
  const start = readme.indexOf('\n### Job types\n');
  const section = readme.slice(start, readme.indexOf('\n#', start + 1));
  return section
    .split('\n')
    .filter((line) => /^\| `[a-z]/.test(line))
    .map((line) => ({ type: /^\| `([^`]+)`/.exec(line)![1]!, limit: /\(([^()]+)\) \|$/.exec(line)?.[1] ?? '' }));
}

/** A limit as the table writes it: whole minutes past one minute, seconds below. */
function written(timeoutMs: number): string {
  return timeoutMs > 60_000 && timeoutMs % 60_000 === 0 ? `${timeoutMs / 60_000} min` : `${timeoutMs / 1_000} s`;
}

describe('README: job types', () => {
  it('lists every public type once, with its time limit per attempt, and no internal one', () => {
    const rows = jobTypesTable();
    expect(rows.map((row) => row.type).sort()).toEqual(publicJobTypes().map((definition) => definition.type).sort());
    for (const definition of publicJobTypes()) expect(rows.find((row) => row.type === definition.type)?.limit).toBe(written(definition.timeoutMs));
  });
});
