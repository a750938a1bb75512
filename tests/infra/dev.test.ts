import { captureStack } from '../../tools/offline/capture';
import type { CapturedStack } from '../../tools/offline/types';
import { describeBaseline } from './baseline';
import { describeCluster } from './cluster';
import { describeFoundation, ofType, one } from './graph';
import { stackConfig } from './stack-config';
import { describeWorkloads } from './workloads';

let stack: CapturedStack;
beforeAll(async () => {
  stack = await captureStack('dev');
});
const cfg = stackConfig('dev');

describe('dev stack (under mocks)', () => {
  describeFoundation(() => stack);
  describeCluster(() => stack, () => cfg);
  describeBaseline(() => stack, () => cfg);
  describeWorkloads(() => stack, () => cfg);

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

    it('runs spot nodes, one group for both pools, untainted', () => {
      const groups = ofType(stack, 'eks:index:ManagedNodeGroup');
      expect(groups.map((g) => [g.inputs.capacityType, g.inputs.taints])).toEqual([['SPOT', []]]);
    });

    it('writes flow logs to S3 at the 10-minute aggregation', () => {
      expect(one(stack, 'aws:ec2/flowLog:FlowLog').inputs).toMatchObject({ logDestinationType: 's3', maxAggregationInterval: 600 });
    });

    it('can be torn down: buckets and the repository are emptied by destroy, the database keeps no snapshot', () => {
      for (const b of ofType(stack, 'aws:s3/bucket:Bucket')) expect(b.inputs.forceDestroy).toBe(true);
      expect(one(stack, 'aws:ecr/repository:Repository').inputs.forceDelete).toBe(true);
      expect(one(stack, 'aws:rds/instance:Instance').inputs).toMatchObject({ deletionProtection: false, skipFinalSnapshot: true });
      expect(one(stack, 'eks:index:Cluster').inputs.deletionProtection).toBe(false);
    });
  });

  describe('is deployed through a restricted public endpoint', () => {
    it('opens the public endpoint to the deployer CIDRs of the stack file only', () => {
      expect(cfg.cluster.endpointAccess).toEqual({ mode: 'restricted', deployerCidrs: ['198.51.100.0/24', '203.0.113.16/28'] });
      expect(one(stack, 'eks:index:Cluster').inputs).toMatchObject({ endpointPublicAccess: true, endpointPrivateAccess: true, publicAccessCidrs: cfg.cluster.endpointAccess.deployerCidrs });
    });

    it('needs no route into the VPC: no transit gateway, no private endpoint rule', () => {
      expect(ofType(stack, 'aws:ec2transitgateway/vpcAttachment:VpcAttachment')).toEqual([]);
      expect(ofType(stack, 'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule').filter((r) => r.name.startsWith('cluster-api-from-'))).toEqual([]);
    });
  });
});
