/**
 * `npm run plan -- --stack <dev|prod> [--json] [--manifests DIR]`
 *
 * Runs the Pulumi program of a stack under the shared mocks (no network, credentials or
 * Pulumi CLI) and prints what it would create: the resource tree (type, name, nesting by
 * parent) and the count per type; `--json` prints
 * `{stack, resources: [{urn, type, name, parent, inputs}]}` with secrets as "[secret]".
 * `--manifests DIR` also writes every Kubernetes object the stack creates as YAML, one
 * file per object under `DIR/<namespace or _cluster>/<kind>-<name>.yaml` (secrets as
 * "[secret]"), and prints the count per kind.
 * Exit codes: 0 printed, 1 the program failed (e.g. a bad stack config value), 2 bad flags.
 */
import * as path from 'node:path';
import { captureStack, redactSecrets, STACKS } from './capture';
import { helmReleases, renderManifests, writeManifests } from './manifests';
import type { CapturedResource, CapturedStack, StackName } from './types';

const USAGE = `usage: npm run plan -- --stack <${STACKS.join('|')}> [--json] [--manifests DIR]`;

export interface PlanFlags {
  stack: StackName;
  json: boolean;
  /** Directory to write the Kubernetes objects into. */
  manifests?: string;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}

/** Parse argv (without node and script). Throws a `UsageError` naming the problem. */
export function parseFlags(argv: readonly string[]): PlanFlags | 'help' {
  let stack: string | undefined;
  let json = false;
  let manifests: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') return 'help';
    if (arg === '--json') json = true;
    else if (arg === '--manifests') {
      manifests = argv[++i];
      if (manifests === undefined || manifests.startsWith('-') || manifests === '') throw new UsageError('--manifests needs a directory');
    } else if (arg.startsWith('--manifests=')) {
      manifests = arg.slice('--manifests='.length);
      if (manifests === '') throw new UsageError('--manifests needs a directory');
    } else if (arg === '--stack' || arg === '-s') {
      stack = argv[++i];
      if (stack === undefined || stack.startsWith('-')) throw new UsageError('--stack needs a value');
    } else if (arg.startsWith('--stack=')) stack = arg.slice('--stack='.length);
    else throw new UsageError(`unknown argument ${JSON.stringify(arg)}`);
  }
  if (stack === undefined) throw new UsageError('--stack is required');
  if (!(STACKS as readonly string[]).includes(stack)) throw new UsageError(`unknown stack ${JSON.stringify(stack)} (expected one of ${STACKS.join(', ')})`);
  return { stack: stack as StackName, json, ...(manifests !== undefined ? { manifests } : {}) };
}

/** What `--manifests` prints: where the files went and the count per kind. */
export function renderManifestSummary(captured: CapturedStack, dir: string): string[] {
  const manifests = renderManifests(captured);
  writeManifests(dir, manifests);
  const counts = new Map<string, number>();
  for (const { object } of manifests) counts.set(`${object.apiVersion} ${object.kind}`, (counts.get(`${object.apiVersion} ${object.kind}`) ?? 0) + 1);
  const rows = [...counts.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
  const width = Math.max(...rows.map(([k]) => k.length), 5);
  return [
    `Kubernetes objects written to ${path.resolve(dir)}:`,
    ...rows.map(([kind, n]) => `  ${kind.padEnd(width)}  ${String(n).padStart(3)}`),
    `  ${'total'.padEnd(width)}  ${String(manifests.length).padStart(3)}`,
    'Helm releases (their objects come from the charts, not rendered here):',
    ...helmReleases(captured).map((r) => `  ${r.namespace}/${r.name}  ${r.chart}@${r.version}`),
  ];
}

/** The tree as text lines: one line per resource, children indented under their parent. */
export function renderTree(captured: CapturedStack): string[] {
  const children = new Map<string | undefined, CapturedResource[]>();
  for (const r of captured.resources) {
    const list = children.get(r.parent) ?? [];
    list.push(r);
    children.set(r.parent, list);
  }
  const lines = [`${captured.project}/${captured.stack}`];
  const walk = (parent: string | undefined, indent: string) => {
    const list = children.get(parent) ?? [];
    list.forEach((r, i) => {
      const last = i === list.length - 1;
      lines.push(`${indent}${last ? '└─ ' : '├─ '}${r.type}  ${r.name}`);
      walk(r.urn, `${indent}${last ? '   ' : '│  '}`);
    });
  };
  walk(undefined, '');
  return lines;
}

/** Count per type, most frequent first, then by type. */
export function countByType(resources: readonly CapturedResource[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const r of resources) counts.set(r.type, (counts.get(r.type) ?? 0) + 1);
  return [...counts.entries()].sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1));
}

export function renderCounts(resources: readonly CapturedResource[]): string[] {
  const counts = countByType(resources);
  const width = Math.max(...counts.map(([t]) => t.length));
  return [
    'Resources by type:',
    ...counts.map(([type, n]) => `  ${type.padEnd(width)}  ${String(n).padStart(3)}`),
    `  ${'total'.padEnd(width)}  ${String(resources.length).padStart(3)}`,
  ];
}

export function planJson(captured: CapturedStack): { stack: StackName; resources: { urn: string; type: string; name: string; parent: string | null; inputs: Record<string, unknown> }[] } {
  return {
    stack: captured.stack,
    resources: captured.resources.map((r) => ({ urn: r.urn, type: r.type, name: r.name, parent: r.parent ?? null, inputs: redactSecrets(r.inputs, r.secretPaths) })),
  };
}

async function main(): Promise<number> {
  let flags: PlanFlags | 'help';
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`error: ${err.message}\n${USAGE}`);
    return 2;
  }
  if (flags === 'help') {
    console.log(USAGE);
    return 0;
  }
  let captured: CapturedStack;
  try {
    captured = await captureStack(flags.stack);
  } catch (err) {
    console.error(`error: the ${flags.stack} program failed under mocks:\n${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(planJson(captured), null, 2)}\n`);
  } else {
    console.log([...renderTree(captured), '', ...renderCounts(captured.resources)].join('\n'));
  }
  // With --json, stdout stays one JSON document: the summary goes to stderr.
  if (flags.manifests !== undefined) (flags.json ? console.error : console.log)(['', ...renderManifestSummary(captured, flags.manifests)].join('\n'));
  return 0;
}

if (require.main === module) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
