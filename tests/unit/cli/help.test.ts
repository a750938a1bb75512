import type { Command } from 'commander';
import { buildProgram } from '../../../services/cli';

function leaves(command: Command, path: string[] = []): { path: string; command: Command }[] {
  const children = command.commands.filter((child) => child.name() !== 'help');
  if (children.length === 0) return [{ path: path.join(' '), command }];
  return [{ path: path.join(' '), command }, ...children.flatMap((child) => leaves(child, [...path, child.name()]))];
}

describe('platform --help', () => {
  it('says what every command does, so the parent help lists none with a blank', () => {
    const silent = leaves(buildProgram(async () => undefined))
      .filter(({ path }) => path !== '')
      .filter(({ command }) => command.description().trim() === '')
      .map(({ path }) => path);
    expect(silent).toEqual([]);
  });
});
