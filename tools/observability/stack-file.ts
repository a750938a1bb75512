import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { PROJECT, PROJECT_KEYS, SECRET_KEYS, parseStackConfig, type StackConfig } from '../../platform/config';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/**
 * A stack's configuration read straight from `Pulumi.<stack>.yaml`, validated like the
 * program validates it, plus which secret keys the file sets (their values stay encrypted
 * and unread). For tools that render what a stack would deploy without running Pulumi.
 */
export function readStackFile(stack: string, root = REPO_ROOT): { config: StackConfig; secretsSet: Set<string> } {
  const file = path.join(root, `Pulumi.${stack}.yaml`);
  const doc = parse(readFileSync(file, 'utf8')) as { config?: Record<string, unknown> } | null;
  const raw: Record<string, unknown> = {};
  const secretsSet = new Set<string>();
  for (const [key, value] of Object.entries(doc?.config ?? {})) {
    if (key === 'aws:region') raw.region = value;
    if (!key.startsWith(`${PROJECT}:`)) continue;
    const name = key.slice(PROJECT.length + 1);
    if ((SECRET_KEYS as readonly string[]).includes(name)) secretsSet.add(name);
    else if ((PROJECT_KEYS as readonly string[]).includes(name)) raw[name] = value;
    else throw new Error(`Pulumi.${stack}.yaml: ${key} is not a known key`);
  }
  return { config: parseStackConfig(raw, stack), secretsSet };
}
