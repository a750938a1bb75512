import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { awsContext } from '../shared/aws-context';
import { type PolicyStatement, policyDocument } from '../shared/iam';
import { housekeepingRules, tlsOnlyStatements } from '../shared/s3';

/** Folders of the archive, one per kind of log AWS delivers into it. */
export const LOG_FOLDERS = {
  /** S3 server access logs of the platform's buckets (S3.9). */
  s3Access: 's3-access',
  /** VPC flow logs, when they go to S3. */
  vpcFlowLogs: 'vpc-flow-logs',
} as const;
export type LogFolder = keyof typeof LOG_FOLDERS;

export interface LogArchiveArgs {
  /** Prefix of the physical bucket name (S3 names are global). Default: the component name. */
  bucketPrefix?: string;
  /**
   * Days each folder's logs are kept, e.g. `{ s3Access: 365, vpcFlowLogs: 90 }`. Only listed
   * folders accept deliveries. Required, at least `s3Access`.
   */
  retentionDays: { s3Access: number } & Partial<Record<LogFolder, number>>;
  /** Days a replaced or deleted log object stays recoverable. Default 30. */
  noncurrentVersionExpireDays?: number;
  /** Let `pulumi destroy` delete the bucket with its logs. Default false. */
  forceDestroy?: boolean;
}

/** Problems with the args, empty when they are usable. Pure, so tests can call it. */
export function validateLogArchiveArgs(args: LogArchiveArgs): string[] {
  const problems: string[] = [];
  for (const [folder, days] of Object.entries(args.retentionDays)) {
    if (!(folder in LOG_FOLDERS)) problems.push(`retentionDays.${folder} is not one of ${Object.keys(LOG_FOLDERS).join(', ')}`);
    if (!Number.isInteger(days) || days < 1) problems.push(`retentionDays.${folder} must be a positive integer`);
  }
  if (args.bucketPrefix !== undefined && `${args.bucketPrefix}-logs-`.length > 37) problems.push(`bucket name prefix ${args.bucketPrefix}-logs- is longer than 37 characters`);
  if ((args.noncurrentVersionExpireDays ?? 30) < 1) problems.push('noncurrentVersionExpireDays must be at least 1');
  return problems;
}

/**
 * The bucket AWS delivers the platform's logs into: S3 server access logs of every other
 * bucket, and VPC flow logs. Private, versioned, TLS-only, with a lifecycle per folder.
 *
 * Encrypted with SSE-S3, not KMS: S3 server access logging cannot deliver into a bucket
 * whose default encryption is SSE-KMS. Its own access is not logged (logging a log bucket
 * into itself would log every delivery, without end).
 */
export class LogArchive extends pulumi.ComponentResource {
  public readonly bucketName: pulumi.Output<string>;
  public readonly bucketArn: pulumi.Output<string>;
  /** The resources a delivery needs in place (bucket policy, ownership): writers depend on them. */
  public readonly ready: pulumi.Resource[];

  constructor(name: string, args: LogArchiveArgs, opts?: pulumi.ComponentResourceOptions) {
    super('platform-kit:log-archive:LogArchive', name, {}, opts);
    const problems = validateLogArchiveArgs(args);
    if (problems.length > 0) throw new pulumi.ResourceError(`LogArchive ${name}: ${problems.join('; ')}`, this);

    const ctx = awsContext(this);
    const folders = Object.keys(args.retentionDays) as LogFolder[];
    const bucket = new aws.s3.Bucket(`${name}-bucket`, { bucketPrefix: `${args.bucketPrefix ?? name}-logs-`, forceDestroy: args.forceDestroy ?? false }, { parent: this });
    const child = { parent: bucket };
    const publicAccess = new aws.s3.BucketPublicAccessBlock(
      `${name}-public-access-block`,
      { bucket: bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
      child,
    );
    // Log delivery is granted by the bucket policy below, which BucketOwnerEnforced requires (no ACLs).
    const ownership = new aws.s3.BucketOwnershipControls(`${name}-ownership`, { bucket: bucket.id, rule: { objectOwnership: 'BucketOwnerEnforced' } }, child);
    new aws.s3.BucketServerSideEncryptionConfiguration(`${name}-encryption`, { bucket: bucket.id, rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'AES256' } }] }, child);
    const versioning = new aws.s3.BucketVersioning(`${name}-versioning`, { bucket: bucket.id, versioningConfiguration: { status: 'Enabled' } }, child);
    new aws.s3.BucketLifecycleConfiguration(
      `${name}-lifecycle`,
      {
        bucket: bucket.id,
        rules: [
          ...folders.map((folder) => ({
            id: `expire-${LOG_FOLDERS[folder]}`,
            status: 'Enabled',
            filter: { prefix: `${LOG_FOLDERS[folder]}/` },
            expiration: { days: args.retentionDays[folder] as number },
          })),
          ...housekeepingRules(args.noncurrentVersionExpireDays ?? 30),
        ],
      },
      { ...child, dependsOn: [versioning] },
    );
    const policy = new aws.s3.BucketPolicy(
      `${name}-policy`,
      {
        bucket: bucket.id,
        policy: pulumi
          .all([bucket.arn, ctx.partition, ctx.region, ctx.accountId])
          .apply(([arn, partition, region, account]) => JSON.stringify(policyDocument(...logArchiveStatements({ arn, partition, region, account, folders })))),
      },
      // S3 rejects a policy put that races the public access block being set.
      { ...child, dependsOn: [publicAccess] },
    );

    this.bucketName = bucket.bucket;
    this.bucketArn = bucket.arn;
    this.ready = [policy, ownership];
    this.registerOutputs({ bucketName: this.bucketName, bucketArn: this.bucketArn });
  }

  /** Where a kind of log is delivered, as the `s3://`-style ARN flow logs take (`<bucket arn>/<folder>/`). */
  folderArn(folder: LogFolder): pulumi.Output<string> {
    return pulumi.interpolate`${this.bucketArn}/${LOG_FOLDERS[folder]}/`;
  }
}

/**
 * The archive's bucket policy: the two AWS log delivery services may write into their own
 * folder, on behalf of this account only (confused-deputy guard), and nobody may use it
 * without TLS. Stating the flow-log grants here keeps AWS from rewriting the policy itself
 * when the first flow log is created, which would fight this program on every `up`.
 */
export function logArchiveStatements(s: { arn: string; partition: string; region: string; account: string; folders: readonly LogFolder[] }): PolicyStatement[] {
  const statements = tlsOnlyStatements(s.arn);
  if (s.folders.includes('s3Access')) {
    statements.push({
      Sid: 'S3ServerAccessLogsDelivery',
      Effect: 'Allow',
      Principal: { Service: 'logging.s3.amazonaws.com' },
      Action: 's3:PutObject',
      Resource: `${s.arn}/${LOG_FOLDERS.s3Access}/*`,
      Condition: { StringEquals: { 'aws:SourceAccount': s.account } },
    });
  }
  if (s.folders.includes('vpcFlowLogs')) {
    const fromLogs = { 'aws:SourceArn': `arn:${s.partition}:logs:${s.region}:${s.account}:*` };
    statements.push(
      {
        Sid: 'FlowLogsDeliveryWrite',
        Effect: 'Allow',
        Principal: { Service: 'delivery.logs.amazonaws.com' },
        Action: 's3:PutObject',
        Resource: `${s.arn}/${LOG_FOLDERS.vpcFlowLogs}/AWSLogs/${s.account}/*`,
        Condition: { StringEquals: { 'aws:SourceAccount': s.account, 's3:x-amz-acl': 'bucket-owner-full-control' }, ArnLike: fromLogs },
      },
      {
        Sid: 'FlowLogsDeliveryAclCheck',
        Effect: 'Allow',
        Principal: { Service: 'delivery.logs.amazonaws.com' },
        Action: ['s3:GetBucketAcl', 's3:ListBucket'],
        Resource: s.arn,
        Condition: { StringEquals: { 'aws:SourceAccount': s.account }, ArnLike: fromLogs },
      },
    );
  }
  return statements;
}
