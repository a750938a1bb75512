import { ALL_POLICIES } from '../../policies/catalog';
import { evaluate, type EvaluationReport } from '../../tools/offline/evaluate';
import { captureStack } from '../../tools/offline/capture';
import { expectEveryRuleApplied, findings } from './real-stack';

let report: EvaluationReport;
beforeAll(async () => {
  const captured = await captureStack('dev');
  report = await evaluate({ stack: 'dev', project: captured.project, resources: captured.resources });
});

const resilience = new Set(ALL_POLICIES.filter((p) => p.platform.concern === 'resilience').map((p) => p.name));

describe('the dev stack', () => {
  it('has no mandatory violation', () => {
    expect(findings(report, 'mandatory')).toEqual([]);
  });

  it('warns only where dev is single-AZ and disposable by design (resilience rules, advisory)', () => {
    const advisory = report.results.filter((r) => r.violations.length > 0);
    for (const r of advisory) {
      expect(resilience.has(r.policy)).toBe(true);
      expect(r.level).toBe('advisory');
    }
  });

  it('gives every AWS and foundation rule something to check', () => {
    expectEveryRuleApplied(report);
  });
});
