import * as path from 'node:path';
import { evaluate } from '../../tools/offline/evaluate';
import { captureStack } from '../../tools/offline/capture';
import type { CapturedResource, CapturedStack } from '../../tools/offline/types';
import { PLACEMENT } from '../../platform/cluster';
import { policyNamed } from '../policies/helpers';
import { one, waitsFor } from './graph';

/**
 * The contract a workloads component relies on: whatever waits on `cluster.ready` waits
 * for the node groups, the EKS add-ons, the access entries and every Helm release, the
 * load balancer controller and KEDA (whose webhooks and CRDs admit Services, Ingresses
 * and ScaledObjects) among them.
 */
let stack: CapturedStack;
beforeAll(async () => {
  stack = await captureStack('prod', { program: path.join(__dirname, 'fixtures', 'dependents-of-cluster.ts') });
});

const release = (chart: string) => stack.resources.find((r) => r.type === 'kubernetes:helm.sh/v3:Release' && r.inputs.chart === chart) as CapturedResource;

describe('a dependent passing cluster.ready as dependsOn', () => {
  const dependents = () => ['kubernetes:core/v1:Service', 'kubernetes:networking.k8s.io/v1:Ingress', 'kubernetes:keda.sh/v1alpha1:ScaledObject', 'kubernetes:apps/v1:Deployment'].map((t) => one(stack, t));

  it.each(['aws-load-balancer-controller', 'keda', 'metrics-server', 'cluster-autoscaler'])('waits for the %s release', (chart) => {
    for (const d of dependents()) expect({ dependent: d.type, waits: waitsFor(stack, d, release(chart)) }).toEqual({ dependent: d.type, waits: true });
  });

  it('waits for every node group, EKS add-on and access entry', () => {
    const prerequisites = stack.resources.filter((r) => ['eks:index:ManagedNodeGroup', 'aws:eks/addon:Addon', 'aws:eks/accessPolicyAssociation:AccessPolicyAssociation'].includes(r.type));
    expect(prerequisites.length).toBe(2 + 4 + 2);
    for (const d of dependents()) for (const p of prerequisites) expect(waitsFor(stack, d, p)).toBe(true);
  });

  it('passes the admission-ordering policy, which catches a dependent that does not wait', async () => {
    const ordering = async (resources: CapturedResource[]) =>
      (await evaluate({ stack: 'prod', resources }, { policies: [policyNamed('kubernetes-admission-webhook-ordering')] })).results[0]?.violations ?? [];
    expect(await ordering(stack.resources)).toEqual([]);
    const service = one(stack, 'kubernetes:core/v1:Service');
    const detached = { ...service, dependencies: [], propertyDependencies: {} };
    const violations = await ordering(stack.resources.map((r) => (r === service ? detached : r)));
    expect(violations.map((v) => v.message)).toEqual([expect.stringContaining("Service 'api' does not wait for the AWS Load Balancer Controller")]);
  });

  it('lands a jobs workload on the jobs pool with the placement the cluster exposes', () => {
    const spec = ((one(stack, 'kubernetes:apps/v1:Deployment').inputs.spec as { template: { spec: Record<string, unknown> } }).template.spec);
    expect({ nodeSelector: spec.nodeSelector, tolerations: spec.tolerations }).toEqual(PLACEMENT.jobs);
  });
});
