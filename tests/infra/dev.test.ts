import { captureStack } from '../../tools/offline/capture';
import type { CapturedStack } from '../../tools/offline/types';
import { describeFoundation, ofType, one } from './graph';

let stack: CapturedStack;
beforeAll(async () => {
  stack = await captureStack('dev');
});

describe('dev stack (under mocks)', () => {
  describeFoundation(() => stack);

  describe('saves cost where a development stack can', () => {
    it('uses one NAT gateway over two AZs and no interface endpoints', () => {
      expect(one(stack, 'awsx:ec2:Vpc').inputs).toMatchObject({ natGateways: { strategy: 'Single' }, availabilityZoneNames: ['eu-west-1a', 'eu-west-1b'] });
      expect(ofType(stack, 'aws:ec2/vpcEndpoint:VpcEndpoint')).toHaveLength(0);
    });

    it('runs a single-AZ database without deletion protection or a final snapshot', () => {
      expect(one(stack, 'aws:rds/instance:Instance').inputs).toMatchObject({ multiAz: false, deletionProtection: false, skipFinalSnapshot: true, instanceClass: 'db.t4g.small' });
    });

    it('runs one cache node without failover', () => {
      expect(one(stack, 'aws:elasticache/replicationGroup:ReplicationGroup').inputs).toMatchObject({ numCacheClusters: 1, automaticFailoverEnabled: false, multiAzEnabled: false });
    });

    it('runs spot nodes', () => {
      expect(ofType(stack, 'eks:index:ManagedNodeGroup').map((g) => g.inputs.capacityType)).toEqual(['SPOT']);
    });
  });

  it('exposes the Kubernetes API publicly only to the configured allow-list', () => {
    expect(one(stack, 'eks:index:Cluster').inputs).toMatchObject({ endpointPublicAccess: true, publicAccessCidrs: ['198.51.100.0/24', '203.0.113.16/28'], deletionProtection: false });
  });
});
