import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { PROJECT, type StackConfig, StackConfigError, parseStackConfig } from '../../platform/config';
import { applyOverrides, REPO_ROOT, stackFileConfig } from '../../tools/offline/capture';

/** The raw object `loadStackConfig` builds from the runtime config, built here from a stack file. */
export function rawConfig(stack: string, overrides: Record<string, string> = {}): Record<string, unknown> {
  const file = `Pulumi.${stack}.yaml`;
  const { config } = stackFileConfig(readFileSync(path.join(REPO_ROOT, file), 'utf8'), file);
  const all = applyOverrides(config, overrides);
  const raw: Record<string, unknown> = { region: all['aws:region'] };
  for (const [k, v] of Object.entries(all)) if (k.startsWith(`${PROJECT}:`)) raw[k.slice(PROJECT.length + 1)] = JSON.parse(v);
  return raw;
}

/** The validated config of a stack file, as the program sees it. */
export function stackConfig(stack: string, overrides: Record<string, string> = {}): StackConfig {
  return parseStackConfig(rawConfig(stack, overrides), stack);
}

/** The message of the StackConfigError `fn` throws; fails the test when it throws nothing or something else. */
export function stackConfigErrorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StackConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a StackConfigError');
}
