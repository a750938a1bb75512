import { captureStack } from '../../tools/offline/capture';
import type { CapturedStack } from '../../tools/offline/types';
import { describeBaseline } from './baseline';
import { describeCluster } from './cluster';
import { attachedTo, describeFoundation, ofType, one, waitsFor } from './graph';
import { stackConfig } from './stack-config';
import { describeWorkloads } from './workloads';

let stack: CapturedStack;
beforeAll(async () => {
  stack = await captureStack('prod');
});
const cfg = stackConfig('prod');

describe('prod stack (under mocks)', () => {
  describeFoundation(() => stack);
  describeCluster(() => stack, () => cfg);
  describeBaseline(() => stack, () => cfg);
  describeWorkloads(() => stack, () => cfg);

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

    it('keeps the job workers on their own tainted pool', () => {
      expect(one(stack, 'eks:index:ManagedNodeGroup', 'cluster-jobs').inputs.taints).toEqual([{ key: 'node.platform-kit.io/jobs', value: 'true', effect: 'NO_SCHEDULE' }]);
      expect(one(stack, 'eks:index:ManagedNodeGroup', 'cluster-system').inputs.taints).toEqual([]);
    });

    it('keeps its data on destroy: nothing is force-emptied', () => {
      for (const b of ofType(stack, 'aws:s3/bucket:Bucket')) expect(b.inputs.forceDestroy).toBe(false);
      expect(one(stack, 'aws:ecr/repository:Repository').inputs.forceDelete).toBe(false);
    });
  });

  describe('keeps the Kubernetes API private and reachable from where it is deployed', () => {
    it('disables the public endpoint and protects the cluster from deletion', () => {
      const cluster = one(stack, 'eks:index:Cluster').inputs;
      expect(cluster).toMatchObject({ endpointPublicAccess: false, endpointPrivateAccess: true, deletionProtection: true });
      expect(cluster.publicAccessCidrs).toBeUndefined();
    });

    it('admits only the deployer CIDRs of the stack file to the private endpoint, on 443', () => {
      const rules = ofType(stack, 'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule').filter((r) => r.name.startsWith('cluster-api-from-'));
      expect(rules.map((r) => r.inputs.cidrIpv4).sort()).toEqual([...cfg.cluster.endpointAccess.deployerCidrs].sort());
      for (const r of rules) expect(r.inputs).toMatchObject({ fromPort: 443, toPort: 443, ipProtocol: 'tcp' });
    });

    it('routes every private subnet to the deployers over the transit gateway', () => {
      const tgw = cfg.network.transitGateway;
      expect(tgw).toBeDefined();
      const attachment = one(stack, 'aws:ec2transitgateway/vpcAttachment:VpcAttachment');
      expect(attachment.inputs).toMatchObject({ transitGatewayId: tgw?.id, vpcId: stack.outputs.vpcId, subnetIds: stack.outputs.privateSubnetIds });
      const routes = ofType(stack, 'aws:ec2/route:Route');
      expect(routes).toHaveLength(cfg.network.availabilityZones.length * (tgw?.routes.length ?? 0));
      for (const r of routes) {
        expect(r.inputs).toMatchObject({ transitGatewayId: tgw?.id, routeTableId: expect.stringMatching(/^rtb-/) });
        expect(tgw?.routes).toContain(r.inputs.destinationCidrBlock);
        expect(r.dependencies).toContain(attachment.urn);
      }
      expect(new Set(routes.map((r) => r.inputs.routeTableId)).size).toBe(cfg.network.availabilityZones.length);
    });

    it('installs nothing through the API before the routes and the endpoint rules exist', () => {
      const provider = one(stack, 'pulumi:providers:kubernetes');
      const path = [...ofType(stack, 'aws:ec2/route:Route'), ...ofType(stack, 'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule').filter((r) => r.name.startsWith('cluster-api-from-'))];
      for (const r of path) expect(waitsFor(stack, provider, r)).toBe(true);
    });
  });

  it('writes flow logs to S3 at the 1-minute aggregation incident timelines need', () => {
    expect(one(stack, 'aws:ec2/flowLog:FlowLog').inputs).toMatchObject({ logDestinationType: 's3', maxAggregationInterval: 60 });
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
