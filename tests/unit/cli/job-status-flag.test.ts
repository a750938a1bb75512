import type { Command } from 'commander';
import { JOB_STATUSES } from '../../../services/contract';
import { buildProgram } from '../../../services/cli';
import { jobStatus } from '../../../services/cli/args';
import { UsageError } from '../../../services/cli/output';

function subcommand(program: Command, ...names: string[]): Command {
  return names.reduce((parent, name) => {
    const found = parent.commands.find((command) => command.name() === name);
    if (!found) throw new Error(`no command ${names.join(' ')}`);
    return found;
  }, program);
}

describe('platform jobs list --status', () => {
  it('lists every status of the contract in its help', () => {
    const status = subcommand(buildProgram(async () => undefined), 'jobs', 'list').options.find((option) => option.long === '--status');
    for (const name of JOB_STATUSES) expect(status?.description).toContain(name);
  });

  it('takes every status of the contract and refuses anything else, naming the flag and the statuses', () => {
    for (const name of JOB_STATUSES) expect(jobStatus(name)).toBe(name);
    expect(jobStatus(undefined)).toBeUndefined();
    expect(() => jobStatus('done')).toThrow(UsageError);
    expect(() => jobStatus('done')).toThrow(`--status must be one of ${JOB_STATUSES.join(', ')}`);
  });
});
