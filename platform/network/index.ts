import * as aws from '@pulumi/aws';
import * as awsx from '@pulumi/awsx';
import * as pulumi from '@pulumi/pulumi';
import { awsContext } from '../shared/aws-context';
import { policyDocument, serviceTrustPolicy } from '../shared/iam';
import { createKmsKey } from '../shared/kms';

export interface NetworkArgs {
  /** AWS region of the VPC, e.g. `eu-west-1`. Required: endpoint service names are plain strings in awsx. */
  region: string;
  /** VPC CIDR block, a /16 to /22. Default `10.0.0.0/16`. */
  cidrBlock?: string;
  /** Availability zone names, 2 or 3, e.g. `['eu-west-1a', 'eu-west-1b']`. Required. */
  availabilityZones: string[];
  /**
   * `single`: one NAT gateway for the VPC (cheap; egress of every AZ depends on one AZ).
   * `onePerAz`: one per AZ (an AZ outage takes only its own egress). Default `onePerAz`.
   */
  natGateways?: 'single' | 'onePerAz';
  /** Where VPC flow logs (all traffic) go, and at which aggregation. Required. */
  flowLogs: FlowLogsSpec;
  /** Interface endpoints for ECR (api, dkr), STS and CloudWatch Logs in the private subnets. Default true. */
  interfaceEndpoints?: boolean;
  /**
   * Attach the private subnets to a transit gateway and route `routes` through it, so that
   * networks behind it (VPN, CI runners) reach the VPC, e.g. a private Kubernetes API.
   * The transit gateway's own route tables must lead back to this VPC (propagation or a
   * static route, owned by whoever owns the gateway). Default none.
   */
  transitGateway?: { id: string; routes: string[] };
}

/**
 * `s3`: Parquet records under `folderArn` (the log archive), retention by its lifecycle.
 * `cloudwatch`: a KMS-encrypted log group of this component, kept `retentionDays`.
 */
export type FlowLogDestination = { type: 's3'; folderArn: pulumi.Input<string>; after?: pulumi.Resource[] } | { type: 'cloudwatch'; retentionDays: number };

export interface FlowLogsSpec {
  destination: FlowLogDestination;
  /** Seconds per flow record, 60 or 600. Default 600 (the AWS default; 60 writes ten times the records). */
  aggregationSeconds?: 60 | 600;
}

export interface SubnetLayout {
  privateCidrMask: number;
  publicCidrMask: number;
}

/**
 * Subnet sizes from the VPC prefix: private subnets an eighth of the VPC each (pods take
 * VPC addresses with the VPC CNI, so private space is what runs out first), public ones a
 * sixty-fourth (only load balancers and NAT gateways live there). Three AZs use 42% of
 * the block, leaving room to add subnets later without renumbering.
 */
export function subnetLayout(cidrBlock: string): SubnetLayout {
  const prefix = Number(cidrBlock.split('/')[1]);
  return { privateCidrMask: prefix + 3, publicCidrMask: prefix + 6 };
}

/** Problems with the args, empty when they are usable. Pure, so tests can call it. */
export function validateNetworkArgs(args: NetworkArgs): string[] {
  const problems: string[] = [];
  const cidr = args.cidrBlock ?? '10.0.0.0/16';
  const prefix = Number(cidr.split('/')[1]);
  if (!Number.isInteger(prefix) || prefix < 16 || prefix > 22) {
    problems.push(`cidrBlock ${cidr} must be a /16 to /22 (public subnets would be smaller than a /28 otherwise)`);
  }
  if (args.availabilityZones.length < 2 || args.availabilityZones.length > 3) {
    problems.push(`availabilityZones must list 2 or 3 zones, got ${args.availabilityZones.length}`);
  }
  for (const az of args.availabilityZones) {
    if (!az.startsWith(args.region)) problems.push(`availability zone ${az} is not in region ${args.region}`);
  }
  if (new Set(args.availabilityZones).size !== args.availabilityZones.length) problems.push('availabilityZones must not repeat a zone');
  const dest = args.flowLogs.destination;
  if (dest.type === 'cloudwatch' && dest.retentionDays < 1) problems.push('flowLogs.destination.retentionDays must be at least 1');
  const interval = args.flowLogs.aggregationSeconds ?? 600;
  if (interval !== 60 && interval !== 600) problems.push('flowLogs.aggregationSeconds must be 60 or 600');
  for (const route of args.transitGateway?.routes ?? []) {
    if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(route)) problems.push(`transitGateway route ${route} is not an IPv4 CIDR block`);
  }
  return problems;
}

/**
 * The VPC: public and private subnets over the given AZs (awsx), NAT per the chosen
 * strategy, VPC flow logs (to the log archive in S3, or to a KMS-encrypted log group), the
 * default security group emptied of its rules, an S3 gateway endpoint and, optionally,
 * interface endpoints and a transit gateway attachment. The awsx VPC is a remote component
 * whose children are invisible under mocks, so everything security-relevant around it is
 * created here as direct resources.
 */
export class Network extends pulumi.ComponentResource {
  public readonly vpcId: pulumi.Output<string>;
  public readonly cidrBlock: string;
  public readonly privateSubnetIds: pulumi.Output<string[]>;
  public readonly publicSubnetIds: pulumi.Output<string[]>;
  /**
   * What must exist before networks behind the transit gateway reach the VPC (attachment
   * and routes); empty without one. A private Kubernetes API waits for it.
   */
  public readonly transitGatewayPath: pulumi.Resource[];
  /** The raw awsx VPC, for the rare caller that needs its route tables or NAT gateways. */
  public readonly vpc: awsx.ec2.Vpc;

  constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super('platform-kit:network:Network', name, {}, opts);
    const problems = validateNetworkArgs(args);
    if (problems.length > 0) throw new pulumi.ResourceError(`Network ${name}: ${problems.join('; ')}`, this);

    const cidrBlock = args.cidrBlock ?? '10.0.0.0/16';
    const ctx = awsContext(this);
    const layout = subnetLayout(cidrBlock);

    const vpc = createVpc(this);
    emptyDefaultSecurityGroup(this);
    createFlowLog(this);
    if (args.interfaceEndpoints ?? true) createInterfaceEndpoints(this);
    const transitGatewayPath = args.transitGateway ? attachTransitGateway(this, args.transitGateway) : [];

    this.vpc = vpc;
    this.vpcId = vpc.vpcId;
    this.cidrBlock = cidrBlock;
    this.privateSubnetIds = vpc.privateSubnetIds;
    this.publicSubnetIds = vpc.publicSubnetIds;
    this.transitGatewayPath = transitGatewayPath;
    this.registerOutputs({ vpcId: this.vpcId, privateSubnetIds: this.privateSubnetIds, publicSubnetIds: this.publicSubnetIds });

    function createVpc(parent: Network): awsx.ec2.Vpc {
      return new awsx.ec2.Vpc(
        `${name}-vpc`,
        {
          cidrBlock,
          availabilityZoneNames: args.availabilityZones,
          enableDnsHostnames: true,
          enableDnsSupport: true,
          subnetStrategy: 'Auto',
          subnetSpecs: [
            // The role tags are how the AWS Load Balancer Controller finds where to put
            // internet-facing and internal load balancers.
            { type: 'Public', cidrMask: layout.publicCidrMask, tags: { 'kubernetes.io/role/elb': '1' } },
            { type: 'Private', cidrMask: layout.privateCidrMask, tags: { 'kubernetes.io/role/internal-elb': '1' } },
          ],
          natGateways: { strategy: (args.natGateways ?? 'onePerAz') === 'single' ? 'Single' : 'OnePerAz' },
          // Gateway endpoints are free and keep S3 traffic (uploads, results, Loki chunks,
          // image layers) off the NAT; `Auto` attaches it to the VPC's route tables.
          vpcEndpointStrategy: 'Auto',
          vpcEndpointSpecs: [{ serviceName: `com.amazonaws.${args.region}.s3`, vpcEndpointType: 'Gateway' }],
          tags: { Name: name },
        },
        { parent },
      );
    }

    function emptyDefaultSecurityGroup(parent: Network): void {
      // Every VPC comes with a default group that admits its own members and all egress;
      // adopting it with no rules leaves nothing attached to it by accident any access (EC2.2).
      new aws.ec2.DefaultSecurityGroup(`${name}-default-sg`, { vpcId: vpc.vpcId, ingress: [], egress: [] }, { parent });
    }

    function createFlowLog(parent: Network): void {
      const dest = args.flowLogs.destination;
      const common = { vpcId: vpc.vpcId, trafficType: 'ALL', maxAggregationInterval: args.flowLogs.aggregationSeconds ?? 600 };
      if (dest.type === 's3') {
        new aws.ec2.FlowLog(
          `${name}-flow-log`,
          {
            ...common,
            logDestinationType: 's3',
            logDestination: dest.folderArn,
            destinationOptions: { fileFormat: 'parquet', hiveCompatiblePartitions: true, perHourPartition: true },
          },
          // The archive's bucket policy must grant log delivery first, or AWS rewrites it.
          { parent, dependsOn: dest.after ?? [] },
        );
        return;
      }
      const { key } = createKmsKey(`${name}-flow-logs`, { description: `VPC flow logs of ${name}`, ctx, servicePrincipals: ['logs'] }, { parent });
      const logGroup = new aws.cloudwatch.LogGroup(`${name}-flow-logs`, { retentionInDays: dest.retentionDays, kmsKeyId: key.arn }, { parent });
      const role = new aws.iam.Role(
        `${name}-flow-logs-role`,
        { description: `Lets VPC flow logs of ${name} write to their log group`, assumeRolePolicy: ctx.accountId.apply((account) => serviceTrustPolicy('vpc-flow-logs', account)) },
        { parent },
      );
      const write = new aws.iam.RolePolicy(
        `${name}-flow-logs-policy`,
        {
          role: role.id,
          policy: logGroup.arn.apply((arn) =>
            JSON.stringify(
              policyDocument({
                Sid: 'WriteFlowLogs',
                Effect: 'Allow',
                Action: ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
                Resource: [arn, `${arn}:*`],
              }),
            ),
          ),
        },
        { parent: role },
      );
      new aws.ec2.FlowLog(
        `${name}-flow-log`,
        { ...common, logDestinationType: 'cloud-watch-logs', logDestination: logGroup.arn, iamRoleArn: role.arn },
        { parent, dependsOn: [write] },
      );
    }

    function attachTransitGateway(parent: Network, tgw: { id: string; routes: string[] }): pulumi.Resource[] {
      const attachment = new aws.ec2transitgateway.VpcAttachment(
        `${name}-tgw-attachment`,
        { transitGatewayId: tgw.id, vpcId: vpc.vpcId, subnetIds: vpc.privateSubnetIds, dnsSupport: 'enable', tags: { Name: `${name}` } },
        { parent },
      );
      // awsx gives each private subnet its own route table; find it through the subnet, once
      // the whole VPC (associations included) exists, or the lookup finds no association.
      const routes = args.availabilityZones.flatMap((az, i) => {
        const routeTableId = aws.ec2.getRouteTableOutput({ subnetId: vpc.privateSubnetIds.apply((ids) => ids[i] ?? '') }, { parent, dependsOn: [vpc] }).routeTableId;
        return tgw.routes.map(
          (cidr) =>
            new aws.ec2.Route(
              `${name}-private-${az}-to-${cidr.replace(/[./]/g, '-')}`,
              { routeTableId, destinationCidrBlock: cidr, transitGatewayId: tgw.id },
              { parent: attachment, dependsOn: [attachment] },
            ),
        );
      });
      return [attachment, ...routes];
    }

    function createInterfaceEndpoints(parent: Network): void {
      const sg = new aws.ec2.SecurityGroup(
        `${name}-endpoints-sg`,
        { vpcId: vpc.vpcId, description: `Interface VPC endpoints of ${name}: HTTPS from inside the VPC only` },
        { parent },
      );
      new aws.vpc.SecurityGroupIngressRule(
        `${name}-endpoints-sg-https`,
        { securityGroupId: sg.id, cidrIpv4: cidrBlock, ipProtocol: 'tcp', fromPort: 443, toPort: 443, description: 'HTTPS from the VPC' },
        { parent: sg },
      );
      // ecr.api + ecr.dkr: image pulls; sts: IRSA token exchange; logs: log shipping.
      for (const service of ['ecr.api', 'ecr.dkr', 'sts', 'logs']) {
        new aws.ec2.VpcEndpoint(
          `${name}-${service.replace('.', '-')}-endpoint`,
          {
            vpcId: vpc.vpcId,
            serviceName: `com.amazonaws.${args.region}.${service}`,
            vpcEndpointType: 'Interface',
            privateDnsEnabled: true,
            subnetIds: vpc.privateSubnetIds,
            securityGroupIds: [sg.id],
          },
          { parent },
        );
      }
    }
  }
}
