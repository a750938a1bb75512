import { type PlatformPolicy, type Props, describe, globMatch, resourcePolicy, str, strs } from '../lib/policy';
import { EKS_COMPONENT, EKS_MANAGED_NODE_GROUP, EKS_NODE_GROUP } from './eks';

/** Where each resource type names its size. */
const SIZES: Record<string, (p: Props) => string[]> = {
  'aws:rds/instance:Instance': (p) => strs([p.instanceClass]),
  'aws:rds/clusterInstance:ClusterInstance': (p) => strs([p.instanceClass]),
  'aws:elasticache/replicationGroup:ReplicationGroup': (p) => strs([p.nodeType]),
  'aws:elasticache/cluster:Cluster': (p) => strs([p.nodeType]),
  'aws:ec2/instance:Instance': (p) => strs([p.instanceType]),
  'aws:ec2/launchTemplate:LaunchTemplate': (p) => strs([p.instanceType]),
  [EKS_NODE_GROUP]: (p) => strs(p.instanceTypes),
  [EKS_MANAGED_NODE_GROUP]: (p) => strs(p.instanceTypes),
  // The default node group exists only when not skipped; its size defaults to t3.medium.
  [EKS_COMPONENT]: (p) => (p.skipDefaultNodeGroup === true ? [] : [str(p.instanceType) ?? 't3.medium']),
};

const DEV_CLASSES = [
  't3.micro', 't3.small', 't3.medium', 't3.large', 't3a.*', 't4g.micro', 't4g.small', 't4g.medium', 't4g.large', 't4g.xlarge',
  'db.t3.micro', 'db.t3.small', 'db.t3.medium', 'db.t4g.micro', 'db.t4g.small', 'db.t4g.medium',
  'cache.t3.micro', 'cache.t3.small', 'cache.t3.medium', 'cache.t4g.micro', 'cache.t4g.small', 'cache.t4g.medium',
];
const sizes = (prefix: string, families: string[], upTo: string[]) => families.flatMap((f) => upTo.map((size) => `${prefix}${f}.${size}`));
const UP_TO_4XL = ['medium', 'large', 'xlarge', '2xlarge', '4xlarge'];
/** Prod: current-generation families each service offers, up to 4xlarge. */
const PROD_CLASSES = [
  ...sizes('', ['t3', 't3a', 't4g', 'm6i', 'm6a', 'm6g', 'm7i', 'm7a', 'm7g', 'c6i', 'c6a', 'c6g', 'c7i', 'c7g', 'r6i', 'r6a', 'r6g', 'r7i', 'r7g'], UP_TO_4XL),
  ...sizes('db.', ['t3', 't4g', 'm6i', 'm6g', 'm7g', 'r6i', 'r6g', 'r7g'], UP_TO_4XL),
  ...sizes('cache.', ['t3', 't4g', 'm6g', 'm7g', 'r6g', 'r7g'], UP_TO_4XL),
];

export const costPolicies: PlatformPolicy[] = [
  resourcePolicy<{ allowedInstanceClasses: string[] }>({
    name: 'aws-instance-class-allow-list',
    description:
      'EC2 instance types, EKS node group types, RDS instance classes and ElastiCache node types come from the stack\'s allow-list (`allowedInstanceClasses`, `*` wildcards): burstable small classes in dev, current-generation families up to 4xlarge in prod. Anything else needs a policy-config change a reviewer sees.',
    control: { framework: 'Platform Kit', id: 'cost-allow-list' },
    concern: 'cost',
    severity: 'medium',
    remediation: 'Pick a class from the allow-list in the stack file, or widen allowedInstanceClasses in policies/catalog.ts (or --policy-pack-config) in a reviewed change.',
    types: Object.keys(SIZES),
    config: {
      schema: { properties: { allowedInstanceClasses: { type: 'array', items: { type: 'string' }, default: PROD_CLASSES } } },
      perStack: { dev: { allowedInstanceClasses: DEV_CLASSES }, prod: { allowedInstanceClasses: PROD_CLASSES } },
    },
    validate: (props, args, report) => {
      const sizes = SIZES[args.type]?.(props) ?? [];
      const outside = sizes.filter((s) => !args.config.allowedInstanceClasses.some((p) => globMatch(p, s)));
      if (outside.length > 0) report(`${describe(args)} uses ${outside.join(', ')}, outside this stack's allowed instance classes.`);
    },
  }),
];
