import { evaluate, type EvaluationReport } from '../../tools/offline/evaluate';
import { captureStack } from '../../tools/offline/capture';

/**
 * The real program with three prod settings turned unsafe through its stack config: the
 * pack must notice, proving the capture-to-policy path sees real inputs, not a stub.
 */
let report: EvaluationReport;
beforeAll(async () => {
  const captured = await captureStack('prod', {
    config: {
      'platform-kit:database.multiAz': 'false',
      'platform-kit:cluster.endpointAccess': JSON.stringify({ mode: 'restricted', deployerCidrs: ['203.0.113.0/24'] }),
      'platform-kit:teardown.forceDestroy': 'true',
    },
  });
  report = await evaluate({ stack: 'prod', resources: captured.resources });
});

it('flags a single-AZ database, a public EKS endpoint and force-destroyed stores in prod as mandatory', () => {
  const fired = report.results.filter((r) => r.violations.length > 0).map((r) => [r.policy, r.level, r.violations.length]);
  expect(fired).toEqual([
    ['aws-rds-instance-multi-az', 'mandatory', 1],
    ['aws-eks-cluster-endpoint-access', 'mandatory', 1],
    // Four buckets (uploads, results, loki-chunks, log archive) and the ECR repository.
    ['aws-force-destroy-disallowed', 'mandatory', 5],
  ]);
});
