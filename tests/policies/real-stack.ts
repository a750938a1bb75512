/**
 * Shared expectations for the real stacks. Each stack is captured in its own test file:
 * Pulumi's runtime is process-global, so one capture per jest module registry.
 */
import { ALL_POLICIES, type PolicyStack } from '../../policies/catalog';
import type { EvaluationReport } from '../../tools/offline/evaluate';

/**
 * Every rule must find something to check in a real stack; a rule that checks nothing
 * passes vacuously, which would hide a renamed type or a broken capture.
 */
export function expectEveryRuleApplied(report: EvaluationReport): void {
  const idle = report.results.filter((r) => r.checked === 0).map((r) => r.policy);
  expect(idle).toEqual([]);
  expect(report.results.map((r) => r.policy)).toEqual(ALL_POLICIES.map((p) => p.name));
}

/** Violations as `policy: urn: message` lines, so a failure names what the program must change. */
export function findings(report: EvaluationReport, level?: 'mandatory' | 'advisory'): string[] {
  return report.results
    .flatMap((r) => r.violations)
    .filter((v) => level === undefined || v.level === level)
    .map((v) => `${v.policy}: ${v.urn ?? '(stack)'}: ${v.message}`);
}

export type { PolicyStack };
