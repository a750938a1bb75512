import { evaluate, type EvaluationReport } from '../../tools/offline/evaluate';
import { captureStack } from '../../tools/offline/capture';
import { expectEveryRuleApplied, findings } from './real-stack';

let report: EvaluationReport;
beforeAll(async () => {
  const captured = await captureStack('prod');
  report = await evaluate({ stack: 'prod', project: captured.project, resources: captured.resources });
});

describe('the prod stack', () => {
  it('passes every policy, all of them mandatory', () => {
    expect(report.results.every((r) => r.level === 'mandatory')).toBe(true);
    expect(findings(report)).toEqual([]);
  });

  it('gives every AWS and foundation rule something to check', () => {
    expectEveryRuleApplied(report);
  });

  it('names the Helm releases policy cannot see into', () => {
    expect(report.opaqueReleases.map((r) => r.chart.split('@')[0]).sort()).toEqual(['alloy', 'aws-load-balancer-controller', 'cluster-autoscaler', 'keda', 'kube-prometheus-stack', 'loki', 'metrics-server', 'prometheus-operator-crds']);
  });
});
