import { evaluate, type EvaluationReport } from '../../tools/offline/evaluate';
import { captureStack } from '../../tools/offline/capture';

/**
 * The real program with two prod settings turned unsafe through its stack config: the
 * pack must notice, proving the capture-to-policy path sees real inputs, not a stub.
 */
let report: EvaluationReport;
beforeAll(async () => {
  const captured = await captureStack('prod', {
    config: { 'platform-kit:database.multiAz': 'false', 'platform-kit:cluster.publicAccessCidrs': '["203.0.113.0/24"]' },
  });
  report = await evaluate({ stack: 'prod', resources: captured.resources });
});

it('flags a single-AZ database and a public EKS endpoint in prod as mandatory', () => {
  const fired = report.results.filter((r) => r.violations.length > 0).map((r) => [r.policy, r.level]);
  expect(fired).toEqual([
    ['aws-rds-instance-multi-az', 'mandatory'],
    ['aws-eks-cluster-endpoint-access', 'mandatory'],
  ]);
});
