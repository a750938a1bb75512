/**
 * npm run policy -- --stack <dev|prod> [--json] [--config <policy-pack-config.json>]
 * npm run policy -- --readme
 *
 * Runs the Pulumi program of one stack under the shared mocks, evaluates every resource
 * and stack policy of policies/ in-process, prints a table (policy, level, resources
 * checked, violations with URN and message) and exits 1 on any mandatory violation.
 * `--readme` rewrites the files generated from the pack (policies/README.md and the
 * taggable-types list) instead.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { PolicyPackConfig } from '@pulumi/policy';
import { STACKS, type PolicyStack } from '../../policies/catalog';
import { captureStack } from './capture';
import { type EvaluationReport, evaluate } from './evaluate';
import { generatedFiles } from './policy-readme';

const USAGE = 'usage: npm run policy -- --stack <dev|prod> [--json] [--config <file.json>]\n       npm run policy -- --readme';

interface Flags {
  stack?: PolicyStack;
  json: boolean;
  readme: boolean;
  config?: string;
}

export function parseFlags(argv: readonly string[]): Flags {
  const flags: Flags = { json: false, readme: false };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] as string;
    const [name, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[(i += 1)];
      if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`);
      return v;
    };
    switch (name) {
      case '--stack': {
        const s = value();
        if (!(STACKS as readonly string[]).includes(s)) throw new Error(`--stack must be one of ${STACKS.join(', ')} (got "${s}")`);
        flags.stack = s as PolicyStack;
        break;
      }
      case '--json':
        flags.json = true;
        break;
      case '--readme':
        flags.readme = true;
        break;
      case '--config':
        flags.config = value();
        break;
      default:
        throw new Error(`unknown argument "${arg}"`);
    }
  }
  if (flags.readme && (flags.stack || flags.json || flags.config)) throw new Error('--readme takes no other flag');
  if (!flags.readme && !flags.stack) throw new Error('--stack is required');
  return flags;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  return rows.map((r, i) => {
    const line = r.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ').trimEnd();
    return i === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
  }).join('\n');
}

export function renderReport(report: EvaluationReport): string {
  const rows = [['policy', 'level', 'checked', 'violations']];
  for (const r of report.results) rows.push([r.policy, r.level, String(r.checked), String(r.violations.length)]);
  const out = [`Policy pack over stack ${report.stack}: ${report.resourceCount} resources, ${report.results.length} policies`, '', table(rows), ''];
  const violations = report.results.flatMap((r) => r.violations);
  if (violations.length > 0) {
    out.push('Violations:');
    for (const v of violations) out.push(`  [${v.level}] ${v.policy}\n    ${v.urn ?? '(stack)'}\n    ${v.message}`);
    out.push('');
  }
  if (report.opaqueReleases.length > 0) {
    out.push('Opaque to policy (Helm v3 Releases: their rendered objects are not visible to CrossGuard, pulumi/pulumi#10055):');
    for (const r of report.opaqueReleases) out.push(`  ${r.chart}  ${r.urn}`);
    out.push('');
  }
  out.push(`${report.mandatory} mandatory, ${report.advisory} advisory violation(s).`);
  return out.join('\n');
}

async function main(): Promise<number> {
  let flags: Flags;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (flags.readme) {
    for (const f of generatedFiles()) {
      fs.writeFileSync(f.path, f.content);
      console.log(`wrote ${path.relative(process.cwd(), f.path)}`);
    }
    return 0;
  }
  const stack = flags.stack as PolicyStack;
  const config = flags.config ? (JSON.parse(fs.readFileSync(flags.config, 'utf8')) as PolicyPackConfig) : undefined;
  const captured = await captureStack(stack);
  const report = await evaluate({ stack, project: captured.project, resources: captured.resources }, config ? { config } : {});
  console.log(flags.json ? JSON.stringify(report, null, 2) : renderReport(report));
  return report.mandatory > 0 ? 1 : 0;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
      process.exit(2);
    },
  );
}
