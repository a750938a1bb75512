import { captureStack } from '../../tools/offline/capture';
import type { CapturedStack } from '../../tools/offline/types';
import { attachedTo, describeFoundation, ofType, one } from './graph';

let stack: CapturedStack;
beforeAll(async () => {
  stack = await captureStack('prod');
});

describe('prod stack (under mocks)', () => {
  describeFoundation(() => stack);

  describe('is built to survive the loss of an AZ', () => {
    it('spreads over three AZs with a NAT gateway in each', () => {
      expect(one(stack, 'awsx:ec2:Vpc').inputs).toMatchObject({ natGateways: { strategy: 'OnePerAz' }, availabilityZoneNames: ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'] });
    });

    it('runs a Multi-AZ database with deletion protection, a final snapshot and at least 7 days of backups', () => {
      const db = one(stack, 'aws:rds/instance:Instance').inputs;
      expect(db).toMatchObject({ multiAz: true, deletionProtection: true, skipFinalSnapshot: false, finalSnapshotIdentifier: 'platform-kit-prod-database-final', deleteAutomatedBackups: false });
      expect(db.backupRetentionPeriod).toBeGreaterThanOrEqual(7);
    });

    it('runs Redis with replicas, automatic failover and Multi-AZ', () => {
      const rg = one(stack, 'aws:elasticache/replicationGroup:ReplicationGroup').inputs;
      expect(rg).toMatchObject({ automaticFailoverEnabled: true, multiAzEnabled: true });
      expect(rg.numCacheClusters).toBeGreaterThanOrEqual(2);
    });

    it('runs on-demand node groups with at least one node per AZ', () => {
      for (const g of ofType(stack, 'eks:index:ManagedNodeGroup')) {
        expect(g.inputs.capacityType).toBe('ON_DEMAND');
        expect((g.inputs.scalingConfig as { minSize: number }).minSize).toBeGreaterThanOrEqual(3);
      }
    });
  });

  describe('keeps the Kubernetes API private', () => {
    it('disables the public endpoint and protects the cluster from deletion', () => {
      const cluster = one(stack, 'eks:index:Cluster').inputs;
      expect(cluster).toMatchObject({ endpointPublicAccess: false, endpointPrivateAccess: true, deletionProtection: true });
      expect(cluster.publicAccessCidrs).toBeUndefined();
    });

    it('admits only the VPN range to the private endpoint, on 443', () => {
      const rules = ofType(stack, 'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule').filter((r) => r.name.startsWith('cluster-api-from-'));
      expect(rules.map((r) => r.inputs)).toEqual([expect.objectContaining({ cidrIpv4: '10.100.0.0/16', fromPort: 443, toPort: 443, ipProtocol: 'tcp' })]);
    });
  });

  it('reaches ECR, STS and CloudWatch Logs through interface endpoints open to the VPC only', () => {
    const endpoints = ofType(stack, 'aws:ec2/vpcEndpoint:VpcEndpoint');
    expect(endpoints.map((e) => e.inputs.serviceName).sort()).toEqual(['ecr.api', 'ecr.dkr', 'logs', 'sts'].map((s) => `com.amazonaws.eu-west-1.${s}`));
    const sg = one(stack, 'aws:ec2/securityGroup:SecurityGroup', 'network-endpoints-sg');
    expect(attachedTo(stack, 'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule', 'securityGroupId', sg).map((r) => r.inputs)).toEqual([
      expect.objectContaining({ cidrIpv4: '10.30.0.0/16', fromPort: 443, toPort: 443 }),
    ]);
  });
});
