import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import * as random from '@pulumi/random';
import { awsContext } from '../shared/aws-context';
import { createDataTierSecurityGroup } from '../shared/data-tier-access';
import { createKmsKey } from '../shared/kms';

const PORT = 5432;
const SUPPORTED_MAJORS = [14, 15, 16, 17];

export interface DatabaseArgs {
  /** VPC of the database. Required. */
  vpcId: pulumi.Input<string>;
  /** Private subnets, in at least two AZs (RDS requires it even without Multi-AZ). Required. */
  subnetIds: pulumi.Input<string[]>;
  /** Security groups allowed to connect, keyed by a stable short name (part of the rule's logical name). Required, at least one. */
  allowedSecurityGroups: Record<string, pulumi.Input<string>>;
  /**
   * PostgreSQL major version, e.g. `16`. Minor versions are RDS's to apply
   * (autoMinorVersionUpgrade is on): pinning one would make the next `up` after an
   * automatic upgrade request a downgrade. Default `16`.
   */
  engineVersion?: string;
  /** Instance class, e.g. `db.t4g.medium`. Required. */
  instanceClass: string;
  /** Initial storage in GiB. Default 20. */
  allocatedStorageGiB?: number;
  /** Storage autoscaling ceiling in GiB. Default 100. */
  maxAllocatedStorageGiB?: number;
  /** Synchronous standby in another AZ. Default true. */
  multiAz?: boolean;
  /** Days of automated backups and point-in-time recovery, 1–35. Default 7. */
  backupRetentionDays?: number;
  /** Refuse deletion, and take a final snapshot when it is finally deleted. Default true. */
  deletionProtection?: boolean;
  /** Performance Insights retention in days. Default 7 (the free tier). */
  performanceInsightsRetentionDays?: number;
  /** Database created at launch. Default `platform`. */
  databaseName?: string;
  /** Master user name. Default `platform_admin`. */
  username?: string;
  /**
   * DB instance identifier, unique per account and region. Fixed rather than generated so the
   * log groups RDS exports to can be created, encrypted and with a retention, before RDS
   * creates them bare. Default `<project>-<stack>-<name>`.
   */
  identifier?: string;
  /** Days to keep the exported PostgreSQL logs (a value CloudWatch accepts). Default 90. */
  logRetentionDays?: number;
}

/** Logs the instance exports to CloudWatch, each into `/aws/rds/instance/<identifier>/<type>`. */
export const EXPORTED_LOGS = ['postgresql', 'upgrade'] as const;

/** Problems with the args, empty when they are usable. Pure, so tests can call it. */
export function validateDatabaseArgs(args: DatabaseArgs): string[] {
  const problems: string[] = [];
  const version = args.engineVersion ?? '16';
  if (!/^\d+$/.test(version)) problems.push(`engineVersion ${version} must be a major version only (e.g. 16): RDS applies minor versions, and a pinned minor would be downgraded`);
  const major = Number(version.split('.')[0]);
  if (!SUPPORTED_MAJORS.includes(major)) problems.push(`engineVersion ${version}: major ${major} is not one of ${SUPPORTED_MAJORS.join(', ')}`);
  if (args.identifier !== undefined && !/^[a-z][a-z0-9-]{0,62}$/.test(args.identifier)) problems.push(`identifier ${args.identifier} must be 1–63 lowercase letters, digits or dashes, starting with a letter`);
  const allocated = args.allocatedStorageGiB ?? 20;
  const max = args.maxAllocatedStorageGiB ?? 100;
  if (allocated < 20) problems.push('allocatedStorageGiB must be at least 20 (gp3 minimum)');
  if (max < allocated) problems.push(`maxAllocatedStorageGiB (${max}) must be ≥ allocatedStorageGiB (${allocated})`);
  const retention = args.backupRetentionDays ?? 7;
  if (retention < 1 || retention > 35) problems.push(`backupRetentionDays ${retention} must be 1–35 (0 would disable backups and point-in-time recovery)`);
  if (Object.keys(args.allowedSecurityGroups).length === 0) problems.push('allowedSecurityGroups must name at least one source, or nothing can connect');
  if ((args.multiAz ?? true) && /\.micro$/.test(args.instanceClass)) problems.push(`instanceClass ${args.instanceClass} is too small for Multi-AZ; use .small or larger`);
  return problems;
}

/**
 * RDS PostgreSQL for the platform's source of truth: private subnets only, reachable only
 * from the given security groups, storage and Performance Insights encrypted with its own
 * KMS key, TLS forced by the parameter group, automated backups, and a generated master
 * password kept as a Pulumi secret (encrypted in state, never printed).
 */
export class Database extends pulumi.ComponentResource {
  public readonly address: pulumi.Output<string>;
  public readonly port: number = PORT;
  public readonly databaseName: string;
  public readonly username: string;
  /** Secret. */
  public readonly password: pulumi.Output<string>;
  /** `postgres://…?sslmode=require`. Secret. */
  public readonly connectionUrl: pulumi.Output<string>;
  public readonly securityGroupId: pulumi.Output<string>;
  public readonly instance: aws.rds.Instance;

  constructor(name: string, args: DatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super('platform-kit:database:Database', name, {}, opts);
    const problems = validateDatabaseArgs(args);
    if (problems.length > 0) throw new pulumi.ResourceError(`Database ${name}: ${problems.join('; ')}`, this);

    // Options every direct child shares: parented here, so it inherits this component's providers.
    const own = { parent: this };
    const ctx = awsContext(this);
    const engineVersion = args.engineVersion ?? '16';
    const identifier = args.identifier ?? `${pulumi.getProject()}-${pulumi.getStack()}-${name}`;
    const deletionProtection = args.deletionProtection ?? true;
    const databaseName = args.databaseName ?? 'platform';
    const username = args.username ?? 'platform_admin';

    const { key } = createKmsKey(name, { description: `RDS ${name}: storage, snapshots, Performance Insights, exported logs`, ctx, servicePrincipals: ['logs'] }, own);
    const securityGroup = createDataTierSecurityGroup(
      `${name}-sg`,
      { vpcId: args.vpcId, port: PORT, description: `RDS ${name}: PostgreSQL from the cluster only`, sources: args.allowedSecurityGroups },
      own,
    );
    const subnetGroup = new aws.rds.SubnetGroup(`${name}-subnets`, { description: `Private subnets of RDS ${name}`, subnetIds: args.subnetIds }, own);
    const parameterGroup = createParameterGroup();
    const password = createPassword();
    const logGroups = createLogGroups();
    const instance = createInstance();

    this.instance = instance;
    this.address = instance.address;
    this.databaseName = databaseName;
    this.username = username;
    this.password = password;
    this.securityGroupId = securityGroup.id;
    this.connectionUrl = pulumi.secret(pulumi.interpolate`postgres://${username}:${password}@${instance.address}:${PORT}/${databaseName}?sslmode=require`);
    this.registerOutputs({ address: this.address, port: PORT, databaseName, username, securityGroupId: this.securityGroupId });

    function createParameterGroup(): aws.rds.ParameterGroup {
      return new aws.rds.ParameterGroup(
        `${name}-params`,
        {
          family: `postgres${engineVersion.split('.')[0]}`,
          description: `RDS ${name}: TLS required`,
          parameters: [
            // Refuse unencrypted connections server-side, whatever a client asks for.
            { name: 'rds.force_ssl', value: '1' },
            { name: 'ssl_min_protocol_version', value: 'TLSv1.2' },
            // Slow statements (>1 s) into the log: the first place to look when job throughput drops.
            { name: 'log_min_duration_statement', value: '1000' },
          ],
        },
        own,
      );
    }

    function createPassword(): pulumi.Output<string> {
      // Alphanumeric only: it goes into a URL, and RDS rejects some punctuation. 32 of 62 symbols is ~190 bits.
      return new random.RandomPassword(`${name}-master`, { length: 32, special: false }, own).result;
    }

    function createLogGroups(): aws.cloudwatch.LogGroup[] {
      return EXPORTED_LOGS.map(
        (type) =>
          new aws.cloudwatch.LogGroup(
            `${name}-${type}-logs`,
            { name: `/aws/rds/instance/${identifier}/${type}`, retentionInDays: args.logRetentionDays ?? 90, kmsKeyId: key.arn },
            own,
          ),
      );
    }

    function createInstance(): aws.rds.Instance {
      return new aws.rds.Instance(
        `${name}-postgres`,
        {
          identifier,
          engine: 'postgres',
          // Major only: with autoMinorVersionUpgrade RDS moves the minor, and the provider
          // accepts a version prefix, so an upgraded instance shows no diff.
          engineVersion,
          instanceClass: args.instanceClass,
          dbName: databaseName,
          username,
          password,
          port: PORT,
          storageType: 'gp3',
          allocatedStorage: args.allocatedStorageGiB ?? 20,
          maxAllocatedStorage: args.maxAllocatedStorageGiB ?? 100,
          storageEncrypted: true,
          kmsKeyId: key.arn,
          dbSubnetGroupName: subnetGroup.name,
          vpcSecurityGroupIds: [securityGroup.id],
          publiclyAccessible: false,
          parameterGroupName: parameterGroup.name,
          caCertIdentifier: 'rds-ca-rsa2048-g1',
          multiAz: args.multiAz ?? true,
          backupRetentionPeriod: args.backupRetentionDays ?? 7,
          backupWindow: '02:00-03:00',
          maintenanceWindow: 'sun:04:00-sun:05:00',
          copyTagsToSnapshot: true,
          deleteAutomatedBackups: !deletionProtection,
          deletionProtection,
          skipFinalSnapshot: !deletionProtection,
          // Snapshot identifiers are unique per account and region, so the stack is part of it.
          ...(deletionProtection ? { finalSnapshotIdentifier: `${identifier}-final` } : {}),
          performanceInsightsEnabled: true,
          performanceInsightsKmsKeyId: key.arn,
          performanceInsightsRetentionPeriod: args.performanceInsightsRetentionDays ?? 7,
          enabledCloudwatchLogsExports: [...EXPORTED_LOGS],
          autoMinorVersionUpgrade: true,
          allowMajorVersionUpgrade: false,
          // Changes wait for the maintenance window instead of restarting the database mid-day.
          applyImmediately: false,
        },
        // Keeps the password output secret even if a transform ever feeds a plain value.
        // The log groups first: RDS creates missing ones itself, unencrypted and kept forever.
        { ...own, additionalSecretOutputs: ['password'], dependsOn: logGroups },
      );
    }
  }
}
