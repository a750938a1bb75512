import { type PlatformPolicy, type Props, arr, at, describe, num, obj, resourcePolicy, str, strs } from '../lib/policy';
import { EKS_COMPONENT, EKS_MANAGED_NODE_GROUP, EKS_NODE_GROUP } from './eks';

const SECURITY_GROUP = 'aws:ec2/securityGroup:SecurityGroup';
const SECURITY_GROUP_RULE = 'aws:ec2/securityGroupRule:SecurityGroupRule';
const INGRESS_RULE = 'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule';
const LAUNCH_TEMPLATE = 'aws:ec2/launchTemplate:LaunchTemplate';
const INSTANCE = 'aws:ec2/instance:Instance';

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
];
