import { captureStack } from '../../tools/offline/capture';
import type { CapturedResource, CapturedStack } from '../../tools/offline/types';
import { ofType, one } from './graph';

/**
 * The twice-yearly upgrade: prod's stack file with `cluster.version` bumped, together with
 * the two versions the schema requires to move with it. One `up` of this graph must
 * upgrade the control plane, the add-ons and the nodes, in that dependency order.
 */
let stack: CapturedStack;
beforeAll(async () => {
  stack = await captureStack('prod', {
    config: {
      'platform-kit:cluster.version': '"1.34"',
      'platform-kit:cluster.addons.kubeProxy': 'v1.34.0-eksbuild.1',
      'platform-kit:cluster.addons.coredns': 'v1.12.3-eksbuild.1',
      'platform-kit:cluster.autoscaler.imageTag': 'v1.34.0',
    },
  });
});

const addon = (name: string) => ofType(stack, 'aws:eks/addon:Addon').find((a) => a.inputs.addonName === name) as CapturedResource;

describe('bumping cluster.version in the stack file', () => {
  it('moves the control plane and every node group to the new version', () => {
    expect(one(stack, 'eks:index:Cluster').inputs.version).toBe('1.34');
    const groups = ofType(stack, 'eks:index:ManagedNodeGroup');
    expect(groups.map((g) => g.inputs.version)).toEqual(groups.map(() => '1.34'));
  });

  it('moves the add-ons and the autoscaler to the versions given with it', () => {
    expect(addon('kube-proxy').inputs.addonVersion).toBe('v1.34.0-eksbuild.1');
    expect(addon('coredns').inputs.addonVersion).toBe('v1.12.3-eksbuild.1');
    const ca = ofType(stack, 'kubernetes:helm.sh/v3:Release').find((r) => r.inputs.chart === 'cluster-autoscaler');
    expect((ca?.inputs.values as { image: unknown }).image).toEqual({ tag: 'v1.34.0' });
  });

  it('keeps the order: control plane, node DaemonSets, nodes, Deployment add-ons', () => {
    const cluster = one(stack, 'eks:index:Cluster');
    for (const a of ofType(stack, 'aws:eks/addon:Addon')) expect(a.dependencies).toContain(cluster.urn);
    for (const g of ofType(stack, 'eks:index:ManagedNodeGroup')) {
      expect(g.dependencies).toEqual(expect.arrayContaining([addon('vpc-cni').urn, addon('kube-proxy').urn]));
      expect(addon('coredns').dependencies).toContain(g.urn);
      expect(addon('aws-ebs-csi-driver').dependencies).toContain(g.urn);
    }
  });
});
