import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import * as random from '@pulumi/random';
import { awsContext } from '../shared/aws-context';
import { createDataTierSecurityGroup } from '../shared/data-tier-access';
import { createKmsKey } from '../shared/kms';

const PORT = 6379;

export interface CacheArgs {
  /** VPC of the cache. Required. */
  vpcId: pulumi.Input<string>;
  /** Private subnets, one per AZ the nodes may use. Required. */
  subnetIds: pulumi.Input<string[]>;
  /** Security groups allowed to connect, keyed by a stable short name. Required, at least one. */
  allowedSecurityGroups: Record<string, pulumi.Input<string>>;
  /** Redis 7 version, e.g. `7.1`. Default `7.1`. */
  engineVersion?: string;
  /** Node type, e.g. `cache.t4g.small`. Required. */
  nodeType: string;
  /**
   * Replicas besides the primary, 0–5. With one or more, automatic failover and Multi-AZ
   * are on (a replica in another AZ is promoted when the primary fails). Default 1.
   */
  replicas?: number;
  /** Days of daily snapshots, 0–35 (0: none). Default 7. */
  snapshotRetentionDays?: number;
}

/** Problems with the args, empty when they are usable. Pure, so tests can call it. */
export function validateCacheArgs(args: CacheArgs): string[] {
  const problems: string[] = [];
  const version = args.engineVersion ?? '7.1';
  if (!/^7\.\d$/.test(version)) problems.push(`engineVersion ${version} must be a Redis 7 version (the parameter group family is redis7)`);
  const replicas = args.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > 5) problems.push(`replicas ${replicas} must be an integer 0–5`);
  const snapshots = args.snapshotRetentionDays ?? 7;
  if (snapshots < 0 || snapshots > 35) problems.push(`snapshotRetentionDays ${snapshots} must be 0–35`);
  if (snapshots > 0 && /^cache\.t1\./.test(args.nodeType)) problems.push(`nodeType ${args.nodeType} does not support snapshots`);
  if (Object.keys(args.allowedSecurityGroups).length === 0) problems.push('allowedSecurityGroups must name at least one source, or nothing can connect');
  return problems;
}

/**
 * ElastiCache for Redis as BullMQ's delivery mechanism: a replication group with
 * `maxmemory-policy noeviction` (BullMQ loses job locks, and so jobs, when Redis evicts
 * keys), TLS required, encryption at rest with its own KMS key, an AUTH token kept as a
 * Pulumi secret, and, with replicas, automatic failover across AZs.
 */
export class Cache extends pulumi.ComponentResource {
  public readonly primaryEndpoint: pulumi.Output<string>;
  public readonly port: number = PORT;
  /** Secret. */
  public readonly authToken: pulumi.Output<string>;
  /** `rediss://:token@host:6379`. Secret. */
  public readonly connectionUrl: pulumi.Output<string>;
  public readonly securityGroupId: pulumi.Output<string>;
  public readonly replicationGroup: aws.elasticache.ReplicationGroup;

  constructor(name: string, args: CacheArgs, opts?: pulumi.ComponentResourceOptions) {
    super('platform-kit:cache:Cache', name, {}, opts);
    const problems = validateCacheArgs(args);
    if (problems.length > 0) throw new pulumi.ResourceError(`Cache ${name}: ${problems.join('; ')}`, this);

    // Options every direct child shares: parented here, so it inherits this component's providers.
    const own = { parent: this };
    const ctx = awsContext(this);
    const replicas = args.replicas ?? 1;
    const failover = replicas > 0;
    const engineVersion = args.engineVersion ?? '7.1';

    const { key } = createKmsKey(name, { description: `ElastiCache ${name}: data at rest and snapshots`, ctx }, own);
    const securityGroup = createDataTierSecurityGroup(
      `${name}-sg`,
      { vpcId: args.vpcId, port: PORT, description: `ElastiCache ${name}: Redis from the cluster only`, sources: args.allowedSecurityGroups },
      own,
    );
    const subnetGroup = new aws.elasticache.SubnetGroup(`${name}-subnets`, { description: `Private subnets of ElastiCache ${name}`, subnetIds: args.subnetIds }, own);
    const parameterGroup = new aws.elasticache.ParameterGroup(
      `${name}-params`,
      {
        family: 'redis7',
        description: `ElastiCache ${name}: BullMQ settings`,
        parameters: [{ name: 'maxmemory-policy', value: 'noeviction' }],
      },
      own,
    );
    // 1–128 printable characters without @, " or /: alphanumeric 64 is well inside that.
    const authToken = new random.RandomPassword(`${name}-auth`, { length: 64, special: false }, own).result;
    const group = new aws.elasticache.ReplicationGroup(
      `${name}-redis`,
      {
        description: `Redis for BullMQ (${name})`,
        engine: 'redis',
        engineVersion,
        nodeType: args.nodeType,
        port: PORT,
        numCacheClusters: 1 + replicas,
        automaticFailoverEnabled: failover,
        multiAzEnabled: failover,
        parameterGroupName: parameterGroup.name,
        subnetGroupName: subnetGroup.name,
        securityGroupIds: [securityGroup.id],
        atRestEncryptionEnabled: true,
        kmsKeyId: key.arn,
        transitEncryptionEnabled: true,
        transitEncryptionMode: 'required',
        authToken,
        authTokenUpdateStrategy: 'ROTATE',
        snapshotRetentionLimit: args.snapshotRetentionDays ?? 7,
        snapshotWindow: '03:00-04:00',
        maintenanceWindow: 'sun:05:00-sun:06:00',
        autoMinorVersionUpgrade: true,
        applyImmediately: false,
      },
      { ...own, additionalSecretOutputs: ['authToken'] },
    );

    this.replicationGroup = group;
    this.primaryEndpoint = group.primaryEndpointAddress;
    this.authToken = authToken;
    this.securityGroupId = securityGroup.id;
    this.connectionUrl = pulumi.secret(pulumi.interpolate`rediss://:${authToken}@${group.primaryEndpointAddress}:${PORT}`);
    this.registerOutputs({ primaryEndpoint: this.primaryEndpoint, port: PORT, securityGroupId: this.securityGroupId });
  }
}
