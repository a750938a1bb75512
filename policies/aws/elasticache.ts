import { type PlatformPolicy, arr, describe, known, obj, referencedBy, resourcePolicy, stackPolicy, str, strs } from '../lib/policy';

const REPLICATION_GROUP = 'aws:elasticache/replicationGroup:ReplicationGroup';
const PARAMETER_GROUP = 'aws:elasticache/parameterGroup:ParameterGroup';

const fsbp = (id: string) => ({
  framework: 'AWS FSBP',
  id,
  url: `https://docs.aws.amazon.com/securityhub/latest/userguide/elasticache-controls.html#${id.toLowerCase().replace('.', '-')}`,
});

export const elasticachePolicies: PlatformPolicy[] = [
  resourcePolicy({
    name: 'aws-elasticache-replication-group-encrypted-at-rest',
    description: 'ElastiCache replication groups set atRestEncryptionEnabled: true (the default is false for the redis engine), ideally with a customer managed kmsKeyId.',
    control: fsbp('ElastiCache.4'),
    concern: 'security',
    severity: 'high',
    remediation: 'Set atRestEncryptionEnabled: true and kmsKeyId. Changing it replaces the group: schedule it.',
    types: [REPLICATION_GROUP],
    validate: (props, args, report) => {
      if (props.atRestEncryptionEnabled !== true) report(`${describe(args)} must set atRestEncryptionEnabled: true.`);
    },
  }),
  resourcePolicy({
    name: 'aws-elasticache-replication-group-encrypted-in-transit',
    description: 'ElastiCache replication groups set transitEncryptionEnabled: true (default false), so BullMQ traffic and the AUTH token never cross the VPC in clear text.',
    control: fsbp('ElastiCache.5'),
    concern: 'security',
    severity: 'high',
    remediation: 'Set transitEncryptionEnabled: true (transitEncryptionMode "required") and connect with rediss://.',
    types: [REPLICATION_GROUP],
    validate: (props, args, report) => {
      if (props.transitEncryptionEnabled !== true) report(`${describe(args)} must set transitEncryptionEnabled: true.`);
      else if (props.transitEncryptionMode === 'preferred') report(`${describe(args)} accepts clear-text clients (transitEncryptionMode "preferred"); use "required".`);
    },
  }),
  resourcePolicy({
    name: 'aws-elasticache-replication-group-auth',
    description: 'ElastiCache replication groups require clients to authenticate: an authToken (kept as a Pulumi secret) or RBAC userGroupIds. Without either, anything that reaches the port can read and flush the queues.',
    control: fsbp('ElastiCache.6'),
    concern: 'security',
    severity: 'high',
    remediation: 'Set authToken from a Pulumi secret (random.RandomPassword) or attach an aws.elasticache.UserGroup via userGroupIds.',
    types: [REPLICATION_GROUP],
    validate: (props, args, report) => {
      const token = props.authToken;
      const hasToken = typeof token === 'string' ? token.length > 0 : token !== undefined && token !== null;
      if (!hasToken && strs(props.userGroupIds).length === 0) report(`${describe(args)} has neither an authToken nor userGroupIds.`);
    },
  }),
  resourcePolicy({
    name: 'aws-elasticache-replication-group-automatic-failover',
    description:
      'ElastiCache replication groups have at least one replica with automaticFailoverEnabled: true and multiAzEnabled: true (both default false), so losing the primary or its AZ costs a failover, not the queue. Required in prod, advised in dev.',
    control: fsbp('ElastiCache.3'),
    concern: 'resilience',
    severity: 'medium',
    remediation: 'Set numCacheClusters ≥ 2 (or replicasPerNodeGroup ≥ 1), automaticFailoverEnabled: true and multiAzEnabled: true.',
    types: [REPLICATION_GROUP],
    validate: (props, args, report) => {
      const missing = [
        props.automaticFailoverEnabled !== true ? 'automaticFailoverEnabled' : undefined,
        props.multiAzEnabled !== true ? 'multiAzEnabled' : undefined,
      ].filter((x) => x !== undefined);
      if (missing.length > 0) report(`${describe(args)} must set ${missing.join(' and ')} to true.`);
    },
  }),
  stackPolicy({
    name: 'aws-elasticache-noeviction',
    description:
      "Every Redis replication group uses a parameter group created in the program with maxmemory-policy = noeviction. BullMQ keeps jobs and their locks in Redis: under any evicting policy a full cache silently drops them (the default parameter groups use volatile-lru). Data integrity, so mandatory in every stack. Platform Kit's own rule; no generic pack has it.",
    control: { framework: 'Platform Kit', id: 'BullMQ', url: 'https://docs.bullmq.io/guide/going-to-production#max-memory-policy' },
    concern: 'security',
    severity: 'high',
    remediation: 'Create an aws.elasticache.ParameterGroup (family redis7) with { name: "maxmemory-policy", value: "noeviction" } and pass its name as parameterGroupName.',
    types: [REPLICATION_GROUP, PARAMETER_GROUP],
    validate: (resources, _args, report) => {
      for (const group of resources.filter((r) => r.type === REPLICATION_GROUP)) {
        const engine = known(() => str(group.props.engine)) ?? 'redis';
        if (engine !== 'redis' && engine !== 'valkey') continue;
        const params = referencedBy(group, 'parameterGroupName').filter((r) => r.type === PARAMETER_GROUP);
        if (params.length === 0) {
          report(`${describe(group)} uses a default parameter group (maxmemory-policy volatile-lru); BullMQ needs noeviction.`, group.urn);
          continue;
        }
        for (const pg of params) {
          const setting = arr(known(() => pg.props.parameters)).map(obj).find((p) => p?.name === 'maxmemory-policy');
          const value = setting ? String(setting.value) : undefined;
          if (value !== 'noeviction') report(`${describe(pg)} sets maxmemory-policy = ${value ?? 'unset (volatile-lru)'}; BullMQ needs noeviction.`, pg.urn);
        }
      }
    },
  }),
];
