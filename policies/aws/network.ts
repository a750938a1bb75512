import type { PolicyResource } from '@pulumi/policy';
import { type PlatformPolicy, type Props, arr, at, describe, known, num, obj, referencedBy, resourcePolicy, stackPolicy, str, strs } from '../lib/policy';
import { EKS_COMPONENT, EKS_MANAGED_NODE_GROUP, EKS_NODE_GROUP, VPC_COMPONENT } from './eks';

const SECURITY_GROUP = 'aws:ec2/securityGroup:SecurityGroup';
const SECURITY_GROUP_RULE = 'aws:ec2/securityGroupRule:SecurityGroupRule';
const INGRESS_RULE = 'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule';
const LAUNCH_TEMPLATE = 'aws:ec2/launchTemplate:LaunchTemplate';
const INSTANCE = 'aws:ec2/instance:Instance';
const VPC = 'aws:ec2/vpc:Vpc';
const DEFAULT_SECURITY_GROUP = 'aws:ec2/defaultSecurityGroup:DefaultSecurityGroup';
const FLOW_LOG = 'aws:ec2/flowLog:FlowLog';
/** Tag that says what reads an instance's 1-minute metrics; detailed monitoring without it is paid for and unread. */
export const DETAILED_MONITORING_READER_TAG = 'platform-kit.io/detailed-monitoring-reader';

/**
 * The VPCs of a stack: the awsx component (all that exists offline) and raw VPCs. Under the
 * CLI the component's raw child VPC is covered through its parent, since companions
 * reference the component's `vpcId` output.
 */
function vpcs(resources: readonly PolicyResource[]): PolicyResource[] {
  return resources.filter((r) => r.type === VPC_COMPONENT || (r.type === VPC && r.parent?.type !== VPC_COMPONENT));
}

/** Resources of `type` that name `vpc` in `vpcId` (by reference, or by a known literal id). */
function attachedToVpc(vpc: PolicyResource, resources: readonly PolicyResource[], type: string): PolicyResource[] {
  const id = known(() => str(vpc.props.id)) ?? known(() => str(vpc.props.vpcId));
  return resources.filter((r) => r.type === type && (referencedBy(r, 'vpcId').some((d) => d.urn === vpc.urn) || (id !== undefined && known(() => str(r.props.vpcId)) === id)));
}

const OPEN = new Set(['0.0.0.0/0', '::/0']);
const WEB_PORTS = new Set([80, 443]);

interface Ingress {
  protocol: string;
  from: number | undefined;
  to: number | undefined;
  cidrs: string[];
}

/** Ingress entries from the three ways the AWS provider spells a rule. */
function ingressOf(type: string, props: Props): Ingress[] {
  switch (type) {
    case SECURITY_GROUP:
      return arr(props.ingress).map((i) => ({
        protocol: String(at(i, 'protocol') ?? ''),
        from: num(at(i, 'fromPort')),
        to: num(at(i, 'toPort')),
        cidrs: [...strs(at(i, 'cidrBlocks')), ...strs(at(i, 'ipv6CidrBlocks'))],
      }));
    case SECURITY_GROUP_RULE:
      if (props.type !== 'ingress') return [];
      return [{ protocol: String(props.protocol ?? ''), from: num(props.fromPort), to: num(props.toPort), cidrs: [...strs(props.cidrBlocks), ...strs(props.ipv6CidrBlocks)] }];
    default:
      return [
        {
          protocol: String(props.ipProtocol ?? ''),
          from: num(props.fromPort),
          to: num(props.toPort),
          cidrs: [str(props.cidrIpv4), str(props.cidrIpv6)].filter((c): c is string => c !== undefined),
        },
      ];
  }
}

function isWebOnly(i: Ingress): boolean {
  const tcp = i.protocol === 'tcp' || i.protocol === '6';
  return tcp && i.from !== undefined && i.from === i.to && WEB_PORTS.has(i.from);
}

export const networkPolicies: PlatformPolicy[] = [
  resourcePolicy<{ loadBalancerNamePattern: string }>({
    name: 'aws-ec2-security-group-no-public-ingress',
    description:
      'No security group admits traffic from 0.0.0.0/0 or ::/0, except a load balancer\'s group (logical name matching `loadBalancerNamePattern`) on TCP 80 or 443 exactly. Covers inline ingress, SecurityGroupRule and SecurityGroupIngressRule.',
    control: { framework: 'AWS FSBP', id: 'EC2.18 / EC2.19', url: 'https://docs.aws.amazon.com/securityhub/latest/userguide/ec2-controls.html#ec2-19' },
    concern: 'security',
    severity: 'critical',
    remediation: 'Allow traffic from a source security group (the nodes, the load balancer) or the VPC CIDR instead of the internet; only an internet-facing load balancer listens to the world, on 80/443.',
    types: [SECURITY_GROUP, SECURITY_GROUP_RULE, INGRESS_RULE],
    config: {
      schema: { properties: { loadBalancerNamePattern: { type: 'string', default: '(^|-)(alb|nlb|lb|ingress)(-|$)' } } },
      perStack: { dev: { loadBalancerNamePattern: '(^|-)(alb|nlb|lb|ingress)(-|$)' }, prod: { loadBalancerNamePattern: '(^|-)(alb|nlb|lb|ingress)(-|$)' } },
    },
    validate: (props, args, report) => {
      const isLoadBalancer = new RegExp(args.config.loadBalancerNamePattern).test(args.name);
      for (const rule of ingressOf(args.type, props)) {
        const open = rule.cidrs.filter((c) => OPEN.has(c));
        if (open.length === 0) continue;
        if (isLoadBalancer && isWebOnly(rule)) continue;
        const ports = rule.from === undefined ? 'all ports' : rule.from === rule.to ? `port ${rule.from}` : `ports ${rule.from}-${rule.to}`;
        report(`${describe(args)} admits ${open.join(' and ')} on ${rule.protocol === '-1' ? 'all protocols' : rule.protocol} ${ports}${isLoadBalancer ? ' (a load balancer may only open TCP 80/443)' : ''}.`);
      }
    },
  }),
  resourcePolicy({
    name: 'aws-ec2-imdsv2-required',
    description:
      "Instances and launch templates require IMDSv2 (metadataOptions.httpTokens = \"required\"; the default \"optional\" lets any SSRF read the node role's credentials). EKS node groups must bring such a launch template, and the eks component's default node group must be skipped, because EKS's own template leaves IMDSv1 on.",
    control: { framework: 'AWS FSBP', id: 'EC2.170 / EC2.8', url: 'https://docs.aws.amazon.com/securityhub/latest/userguide/ec2-controls.html#ec2-170' },
    concern: 'security',
    severity: 'high',
    remediation: 'Set metadataOptions { httpTokens: "required", httpPutResponseHopLimit: 1 (2 only where pods need the node role) } on an aws.ec2.LaunchTemplate and pass it as the node group\'s launchTemplate; set skipDefaultNodeGroup: true on the cluster.',
    types: [LAUNCH_TEMPLATE, INSTANCE, EKS_NODE_GROUP, EKS_MANAGED_NODE_GROUP, EKS_COMPONENT],
    validate: (props, args, report) => {
      switch (args.type) {
        case LAUNCH_TEMPLATE:
        case INSTANCE: {
          const tokens = str(at(props.metadataOptions, 'httpTokens'));
          if (tokens !== 'required') report(`${describe(args)} allows IMDSv1 (metadataOptions.httpTokens is ${tokens ?? 'unset, i.e. optional'}).`);
          return;
        }
        case EKS_COMPONENT:
          if (props.skipDefaultNodeGroup !== true && !props.fargate && !props.autoMode) {
            report(`${describe(args)} creates a default node group whose launch template this program does not control; set skipDefaultNodeGroup: true.`);
          }
          return;
        default:
          if (obj(props.launchTemplate) === undefined) report(`${describe(args)} has no launch template, so its nodes accept IMDSv1; pass a launchTemplate that requires IMDSv2.`);
      }
    },
  }),
  stackPolicy({
    name: 'aws-ec2-default-security-group-no-rules',
    description:
      "Every VPC's default security group is adopted by the program (a DefaultSecurityGroup for the VPC) with no ingress and no egress rules. AWS creates it admitting all traffic between its members; anything attached to it by accident would get that access.",
    control: { framework: 'AWS FSBP', id: 'EC2.2', url: 'https://docs.aws.amazon.com/securityhub/latest/userguide/ec2-controls.html#ec2-2' },
    concern: 'security',
    severity: 'high',
    remediation: 'Add an aws.ec2.DefaultSecurityGroup with vpcId and ingress: [], egress: []; give every workload its own security group.',
    types: [VPC_COMPONENT, VPC, DEFAULT_SECURITY_GROUP],
    validate: (resources, _args, report) => {
      for (const sg of resources.filter((r) => r.type === DEFAULT_SECURITY_GROUP)) {
        const rules = [...arr(known(() => sg.props.ingress)), ...arr(known(() => sg.props.egress))];
        if (rules.length > 0) report(`${describe(sg)} keeps ${rules.length} rule(s); the default security group must have none.`, sg.urn);
      }
      for (const vpc of vpcs(resources)) {
        if (attachedToVpc(vpc, resources, DEFAULT_SECURITY_GROUP).length === 0) {
          report(`${describe(vpc)} leaves its default security group as AWS created it (all traffic between members, all egress); adopt it with an empty DefaultSecurityGroup.`, vpc.urn);
        }
      }
    },
  }),
  stackPolicy({
    name: 'aws-vpc-flow-logs-enabled',
    description: 'Every VPC has a flow log of ALL traffic (accepted and rejected), to S3 or CloudWatch Logs, so an incident can be traced to the connections that carried it.',
    control: { framework: 'AWS FSBP', id: 'EC2.6', url: 'https://docs.aws.amazon.com/securityhub/latest/userguide/ec2-controls.html#ec2-6' },
    concern: 'security',
    severity: 'medium',
    remediation: 'Add an aws.ec2.FlowLog with vpcId, trafficType: "ALL" and a destination (the log archive bucket, or a KMS-encrypted log group).',
    types: [VPC_COMPONENT, VPC, FLOW_LOG],
    validate: (resources, _args, report) => {
      for (const vpc of vpcs(resources)) {
        const logs = attachedToVpc(vpc, resources, FLOW_LOG);
        if (logs.length === 0) report(`${describe(vpc)} has no flow log.`, vpc.urn);
        else if (!logs.some((l) => known(() => l.props.trafficType) === 'ALL')) report(`${describe(vpc)} logs only ${logs.map((l) => String(known(() => l.props.trafficType) ?? 'unset')).join(', ')} traffic; log ALL.`, vpc.urn);
      }
    },
  }),
  resourcePolicy({
    name: 'aws-ec2-detailed-monitoring-read',
    description: `Instances and launch templates turn on detailed (1-minute) CloudWatch monitoring only where something reads it, said in the tag \`${DETAILED_MONITORING_READER_TAG}\` (e.g. the alarm or dashboard). It is billed per instance and metric; Prometheus already scrapes the nodes.`,
    control: { framework: 'Platform Kit', id: 'paid-telemetry-is-read' },
    concern: 'cost',
    severity: 'low',
    remediation: `Set monitoring.enabled: false, or name the reader in the ${DETAILED_MONITORING_READER_TAG} tag (node group config: detailedMonitoringReader).`,
    types: [LAUNCH_TEMPLATE, INSTANCE],
    validate: (props, args, report) => {
      const on = args.type === INSTANCE ? props.monitoring === true : at(props.monitoring, 'enabled') === true;
      if (!on) return;
      const reader = str(at(props.tags, DETAILED_MONITORING_READER_TAG));
      if (!reader || reader.trim() === '') report(`${describe(args)} enables detailed monitoring but its ${DETAILED_MONITORING_READER_TAG} tag does not say what reads it.`);
    },
  }),
];
