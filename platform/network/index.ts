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
  /** Days to keep VPC flow logs. Default 90. */
  flowLogRetentionDays?: number;
  /** Interface endpoints for ECR (api, dkr), STS and CloudWatch Logs in the private subnets. Default true. */
  interfaceEndpoints?: boolean;
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
  if ((args.flowLogRetentionDays ?? 90) < 1) problems.push('flowLogRetentionDays must be at least 1');
  return problems;
}

/**
 * The VPC: public and private subnets over the given AZs (awsx), NAT per the chosen
 * strategy, VPC flow logs to a KMS-encrypted log group, an S3 gateway endpoint and,
 * optionally, interface endpoints. The awsx VPC is a remote component whose children are
 * invisible under mocks, so everything security-relevant around it (flow log, its role
 * and key, endpoint security group and rules) is created here as direct resources.
 */
export class Network extends pulumi.ComponentResource {
  public readonly vpcId: pulumi.Output<string>;
  public readonly cidrBlock: string;
  public readonly privateSubnetIds: pulumi.Output<string[]>;
  public readonly publicSubnetIds: pulumi.Output<string[]>;
  public readonly flowLogGroupName: pulumi.Output<string>;
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
    const flowLogGroup = createFlowLogs(this);
    if (args.interfaceEndpoints ?? true) createInterfaceEndpoints(this);

    this.vpc = vpc;
    this.vpcId = vpc.vpcId;
    this.cidrBlock = cidrBlock;
    this.privateSubnetIds = vpc.privateSubnetIds;
    this.publicSubnetIds = vpc.publicSubnetIds;
    this.flowLogGroupName = flowLogGroup.name;
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

    function createFlowLogs(parent: Network): aws.cloudwatch.LogGroup {
      const { key } = createKmsKey(`${name}-flow-logs`, { description: `VPC flow logs of ${name}`, ctx, servicePrincipals: ['logs'] }, { parent });
      const logGroup = new aws.cloudwatch.LogGroup(
        `${name}-flow-logs`,
        { retentionInDays: args.flowLogRetentionDays ?? 90, kmsKeyId: key.arn },
        { parent },
      );
      const role = new aws.iam.Role(
        `${name}-flow-logs-role`,
        { description: `Lets VPC flow logs of ${name} write to their log group`, assumeRolePolicy: ctx.accountId.apply((account) => serviceTrustPolicy('vpc-flow-logs', account)) },
        { parent },
      );
      new aws.iam.RolePolicy(
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
        {
          vpcId: vpc.vpcId,
          trafficType: 'ALL',
          logDestinationType: 'cloud-watch-logs',
          logDestination: logGroup.arn,
          iamRoleArn: role.arn,
          // One-minute aggregation: incident timelines need finer grain than the 10-minute default.
          maxAggregationInterval: 60,
        },
        { parent },
      );
      return logGroup;
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
