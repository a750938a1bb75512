import type { PolicyResource } from '@pulumi/policy';
import { type PlatformPolicy, type Props, at, describe, known, obj, referencedBy, resourcePolicy, stackPolicy, str, strs } from '../lib/policy';

/** The remote component (all that exists offline) and the raw resource it creates under the CLI. */
export const EKS_COMPONENT = 'eks:index:Cluster';
export const EKS_CLUSTER = 'aws:eks/cluster:Cluster';
export const EKS_MANAGED_NODE_GROUP = 'eks:index:ManagedNodeGroup';
export const EKS_NODE_GROUP = 'aws:eks/nodeGroup:NodeGroup';
export const VPC_COMPONENT = 'awsx:ec2:Vpc';
const SUBNET = 'aws:ec2/subnet:Subnet';
export const EKS_ADDON = 'aws:eks/addon:Addon';
const ADDON_VERSION = /^v\d+\.\d+\.\d+-eksbuild\.\d+$/;

const fsbp = (id: string) => ({ framework: 'AWS FSBP', id, url: `https://docs.aws.amazon.com/securityhub/latest/userguide/eks-controls.html#${id.toLowerCase().replace('.', '-')}` });

const OPEN = new Set(['0.0.0.0/0', '::/0']);

/** Endpoint settings from either shape: the component's flat inputs or the raw `vpcConfig`. */
function endpointOf(type: string, props: Props) {
  const src = type === EKS_CLUSTER ? obj(props.vpcConfig) ?? {} : props;
  return {
    // Both the component and the provider default to a public endpoint open to 0.0.0.0/0.
    publicAccess: src.endpointPublicAccess !== false,
    privateAccess: src.endpointPrivateAccess === true,
    cidrs: src.publicAccessCidrs === undefined ? ['0.0.0.0/0'] : strs(src.publicAccessCidrs),
  };
}

export const eksPolicies: PlatformPolicy[] = [
  resourcePolicy<{ allowPublicEndpoint: boolean }>({
    name: 'aws-eks-cluster-endpoint-access',
    description:
      'The EKS API endpoint is private (endpointPublicAccess: false, endpointPrivateAccess: true) where allowPublicEndpoint is false (prod). Where it is true (dev), a public endpoint is allowed only with an explicit publicAccessCidrs allow-list that excludes 0.0.0.0/0 and ::/0. Unset means public and open to the internet (the default of both the component and the provider).',
    control: fsbp('EKS.1'),
    concern: 'security',
    severity: 'high',
    remediation: 'Set endpointPrivateAccess: true and endpointPublicAccess: false; in dev, if the endpoint must be public, list the office/VPN CIDRs in publicAccessCidrs.',
    types: [EKS_COMPONENT, EKS_CLUSTER],
    config: {
      schema: { properties: { allowPublicEndpoint: { type: 'boolean', default: false, description: 'Whether an allow-listed public endpoint is acceptable.' } } },
      perStack: { dev: { allowPublicEndpoint: true }, prod: { allowPublicEndpoint: false } },
    },
    validate: (props, args, report) => {
      const ep = endpointOf(args.type, props);
      if (!ep.privateAccess) report(`${describe(args)} must set endpointPrivateAccess: true so nodes and operators reach the API inside the VPC.`);
      if (!ep.publicAccess) return;
      if (!args.config.allowPublicEndpoint) {
        report(`${describe(args)} exposes a public API endpoint; this stack requires endpointPublicAccess: false.`);
      } else if (ep.cidrs.length === 0 || ep.cidrs.some((c) => OPEN.has(c))) {
        report(`${describe(args)} exposes a public API endpoint to ${ep.cidrs.join(', ') || 'everyone'}; restrict publicAccessCidrs to an allow-list.`);
      }
    },
  }),
  resourcePolicy<{ requiredLogTypes: string[] }>({
    name: 'aws-eks-cluster-control-plane-logging',
    description: 'EKS control-plane logs `requiredLogTypes` (api, audit, authenticator) go to CloudWatch, so who did what to the cluster can be answered. Logging is off by default.',
    control: fsbp('EKS.8'),
    concern: 'security',
    severity: 'medium',
    remediation: 'Set enabledClusterLogTypes to include api, audit and authenticator (and give the log group a retention).',
    types: [EKS_COMPONENT, EKS_CLUSTER],
    config: {
      schema: { properties: { requiredLogTypes: { type: 'array', items: { type: 'string' }, default: ['api', 'audit', 'authenticator'] } } },
      perStack: { dev: { requiredLogTypes: ['api', 'audit', 'authenticator'] }, prod: { requiredLogTypes: ['api', 'audit', 'authenticator'] } },
    },
    validate: (props, args, report) => {
      const enabled = strs(props.enabledClusterLogTypes);
      const missing = args.config.requiredLogTypes.filter((t) => !enabled.includes(t));
      if (missing.length > 0) report(`${describe(args)} does not log ${missing.join(', ')} (enabledClusterLogTypes: [${enabled.join(', ')}]).`);
    },
  }),
  resourcePolicy({
    name: 'aws-eks-cluster-secrets-encryption',
    description: 'EKS envelope-encrypts Kubernetes Secrets with a KMS key: encryptionConfigKeyArn on the component, or encryptionConfig { resources: ["secrets"], provider.keyArn } on the raw cluster.',
    control: fsbp('EKS.3'),
    concern: 'security',
    severity: 'high',
    remediation: 'Create an aws.kms.Key with rotation and pass its ARN as encryptionConfigKeyArn.',
    types: [EKS_COMPONENT, EKS_CLUSTER],
    validate: (props, args, report) => {
      if (args.type === EKS_COMPONENT) {
        if (!props.encryptionConfigKeyArn) report(`${describe(args)} must set encryptionConfigKeyArn.`);
        return;
      }
      const configs = Array.isArray(props.encryptionConfig) ? props.encryptionConfig : [props.encryptionConfig];
      const ok = configs.some((c) => strs(at(c, 'resources')).includes('secrets') && Boolean(at(c, 'provider', 'keyArn')));
      if (!ok) report(`${describe(args)} must encrypt secrets: encryptionConfig { resources: ["secrets"], provider: { keyArn } }.`);
    },
  }),
  stackPolicy({
    name: 'aws-eks-node-group-private-subnets',
    description:
      "EKS worker nodes run only in private subnets: every managed node group names its subnetIds explicitly (unset means all the cluster's subnets, public ones included) and none of them is a public subnet of the VPC; the component's default self-managed node group is skipped or kept private.",
    control: { framework: 'CIS EKS Benchmark', id: '5.4.3', url: 'https://docs.aws.amazon.com/eks/latest/best-practices/subnets.html' },
    concern: 'security',
    severity: 'high',
    remediation: 'Pass vpc.privateSubnetIds as subnetIds to every node group; set skipDefaultNodeGroup: true on the cluster (or nodeAssociatePublicIpAddress: false with private nodeSubnetIds).',
    types: [EKS_COMPONENT, EKS_MANAGED_NODE_GROUP, EKS_NODE_GROUP, SUBNET],
    validate: (resources, _args, report) => {
      const publicIds = new Set<string>();
      const privateIds = new Set<string>();
      for (const c of resources.filter((r) => r.type === EKS_COMPONENT)) {
        strs(known(() => c.props.publicSubnetIds)).forEach((id) => publicIds.add(id));
        strs(known(() => c.props.privateSubnetIds)).forEach((id) => privateIds.add(id));
      }
      for (const s of resources.filter((r) => r.type === SUBNET)) {
        const id = known(() => str(s.props.id));
        if (id && known(() => s.props.mapPublicIpOnLaunch) === true) publicIds.add(id);
      }
      const check = (group: PolicyResource, subnets: unknown) => {
        if (subnets === undefined) {
          report(`${describe(group)} does not set subnetIds, so it spans every subnet of the cluster, public ones included.`, group.urn);
          return;
        }
        const ids = strs(subnets);
        const pub = ids.filter((id) => publicIds.has(id) || (privateIds.size > 0 && !privateIds.has(id)));
        if (pub.length > 0) report(`${describe(group)} places nodes in non-private subnets: ${pub.join(', ')}.`, group.urn);
      };
      for (const g of resources.filter((r) => r.type === EKS_MANAGED_NODE_GROUP || r.type === EKS_NODE_GROUP)) {
        check(g, known(() => g.props.subnetIds) ?? undefined);
      }
      for (const c of resources.filter((r) => r.type === EKS_COMPONENT)) {
        if (known(() => c.props.skipDefaultNodeGroup) === true || known(() => c.props.fargate) || known(() => c.props.autoMode)) continue;
        if (known(() => c.props.nodeAssociatePublicIpAddress) !== false) {
          report(`${describe(c)} keeps its default node group with public IPs (nodeAssociatePublicIpAddress defaults to true); set skipDefaultNodeGroup: true.`, c.urn);
        }
        check(c, known(() => c.props.nodeSubnetIds) ?? (privateIds.size > 0 ? [...privateIds] : undefined));
      }
    },
  }),
  resourcePolicy({
    name: 'aws-eks-addon-version-pinned',
    description:
      'EKS managed add-ons name an exact addonVersion (v1.2.3-eksbuild.4). Unset means "the default for the cluster version at creation": two stacks drift apart, and an upgrade of the cluster leaves the add-on behind without a diff anyone reviews.',
    control: { framework: 'Platform Kit', id: 'upgrade-without-drift', url: 'https://docs.aws.amazon.com/eks/latest/userguide/updating-an-add-on.html' },
    concern: 'resilience',
    severity: 'medium',
    remediation: 'Set addonVersion from the stack file (platform-kit:cluster.addons); list versions with `aws eks describe-addon-versions --kubernetes-version <version> --addon-name <name>`.',
    types: [EKS_ADDON],
    validate: (props, args, report) => {
      const version = str(props.addonVersion);
      if (version === undefined) report(`${describe(args)} does not pin addonVersion.`);
      else if (!ADDON_VERSION.test(version)) report(`${describe(args)} pins addonVersion '${version}', not an exact EKS add-on build.`);
    },
  }),
  stackPolicy({
    name: 'aws-eks-node-group-version-follows-cluster',
    description:
      "Every managed node group states its Kubernetes version and it is its cluster's: a bump of the cluster version then rolls the nodes in the same `up`. Unset, EKS picks the version once at creation and the nodes stay behind on every upgrade until the skew blocks the next one.",
    control: { framework: 'Kubernetes version skew policy', id: 'kubelet', url: 'https://kubernetes.io/releases/version-skew-policy/#kubelet' },
    concern: 'resilience',
    severity: 'medium',
    remediation: 'Pass the cluster version as `version` to every node group (with no AMI pinned in its launch template).',
    types: [EKS_COMPONENT, EKS_CLUSTER, EKS_MANAGED_NODE_GROUP, EKS_NODE_GROUP],
    validate: (resources, _args, report) => {
      const clusters = resources.filter((r) => r.type === EKS_COMPONENT || (r.type === EKS_CLUSTER && r.parent?.type !== EKS_COMPONENT));
      for (const group of resources.filter((r) => r.type === EKS_MANAGED_NODE_GROUP || (r.type === EKS_NODE_GROUP && r.parent?.type !== EKS_MANAGED_NODE_GROUP))) {
        const refs = [...referencedBy(group, 'cluster'), ...referencedBy(group, 'clusterName')].filter((c) => clusters.some((k) => k.urn === c.urn));
        const cluster = refs[0] ?? (clusters.length === 1 ? clusters[0] : undefined);
        const version = known(() => str(group.props.version));
        if (version === undefined) {
          report(`${describe(group)} does not state its Kubernetes version, so it never follows the cluster's.`, group.urn);
          continue;
        }
        const clusterVersion = cluster ? known(() => str(cluster.props.version)) : undefined;
        if (cluster && clusterVersion !== undefined && clusterVersion !== version) report(`${describe(group)} runs ${version} while ${describe(cluster)} runs ${clusterVersion}.`, group.urn);
      }
    },
  }),
];
