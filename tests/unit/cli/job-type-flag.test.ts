import type { Command } from 'commander';
import { JOB_TYPES } from '../../../services/contract';
import { buildProgram } from '../../../services/cli';
import { jobType } from '../../../services/cli/args';
import { UsageError } from '../../../services/cli/output';

function listOption(name: string): string | undefined {
  const jobs = buildProgram(async () => undefined).commands.find((command) => command.name() === 'jobs');
  const list = jobs?.commands.find((command: Command) => command.name() === 'list');
  return list?.options.find((option) => option.long === name)?.description;
}

describe('platform jobs list --type', () => {
  const names = Object.keys(JOB_TYPES);

  it('lists every type of the registry in its help, internal ones too', () => {
    expect(names).toContain('email.send');
    for (const name of names) expect(listOption('--type')).toContain(name);
  });

  it('takes every type of the registry and refuses anything else, naming the flag and the types', () => {
    for (const name of names) expect(jobType(name)).toBe(name);
    expect(jobType(undefined)).toBeUndefined();
    // Near misses and names the registry's object has but does not declare.
    for (const value of ['file.checksun', 'Echo', 'echo ', '', 'toString', '__proto__']) {
      expect(() => jobType(value)).toThrow(new UsageError(`--type must be one of ${names.join(', ')}, got ${JSON.stringify(value)}`));
    }
  });
});
