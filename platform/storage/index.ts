import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { awsContext } from '../shared/aws-context';
import { policyDocument } from '../shared/iam';
import { createKmsKey } from '../shared/kms';
import { housekeepingRules, tlsOnlyStatements } from '../shared/s3';

export interface BucketSpec {
  /** Days after which current objects expire. Required: every bucket here holds data with a lifetime. */
  expireDays: number;
}

export interface StorageArgs {
  /**
   * Buckets by role (e.g. `uploads`, `results`, `loki-chunks`). The role is part of the
   * logical and physical names: never rename one that shipped. Required, at least one.
   */
  buckets: Record<string, BucketSpec>;
  /** Prefix of physical bucket names (S3 names are global). Default: the component name. */
  bucketPrefix?: string;
  /** Days a replaced or deleted object version stays recoverable. Default 30. */
  noncurrentVersionExpireDays?: number;
  /**
   * Where S3 server access logs of every bucket go (S3.9): the log archive's bucket and the
   * key prefix there (ending in `/`); each bucket logs under `<prefix><role>/`. Required.
   */
  accessLogs: { bucketName: pulumi.Input<string>; prefix: string; after?: pulumi.Resource[] };
  /** Let `pulumi destroy` delete non-empty buckets (disposable stacks only). Default false. */
  forceDestroy?: boolean;
}

export interface StoredBucket {
  name: pulumi.Output<string>;
  arn: pulumi.Output<string>;
}

/** Problems with the args, empty when they are usable. Pure, so tests can call it. */
export function validateStorageArgs(args: StorageArgs): string[] {
  const problems: string[] = [];
  const roles = Object.keys(args.buckets);
  if (roles.length === 0) problems.push('buckets must define at least one bucket');
  for (const role of roles) {
    if (!/^[a-z0-9][a-z0-9-]{1,20}$/.test(role)) problems.push(`bucket role ${role} must be 2–21 lowercase letters, digits or dashes`);
    const days = args.buckets[role]?.expireDays ?? 0;
    if (!Number.isInteger(days) || days < 1) problems.push(`bucket ${role}: expireDays must be a positive integer`);
  }
  for (const role of roles) {
    const prefix = `${args.bucketPrefix ?? '<name>'}-${role}-`;
    // S3 names stop at 63 characters and the generated suffix takes 26 of them.
    if (args.bucketPrefix !== undefined && prefix.length > 37) problems.push(`bucket name prefix ${prefix} is longer than 37 characters`);
  }
  if ((args.noncurrentVersionExpireDays ?? 30) < 1) problems.push('noncurrentVersionExpireDays must be at least 1');
  if (!/^[a-z0-9][a-z0-9/_-]*\/$/.test(args.accessLogs.prefix)) problems.push(`accessLogs.prefix ${args.accessLogs.prefix} must be a key prefix ending in "/"`);
  return problems;
}

/**
 * Private S3 buckets: public access blocked at the bucket, ACLs disabled, SSE-KMS with one
 * key for the component and S3 Bucket Keys (fewer KMS calls, lower cost), versioning,
 * lifecycle rules, server access logging into the log archive, and a bucket policy that
 * refuses any request not made over TLS 1.2+.
 */
export class Storage extends pulumi.ComponentResource {
  public readonly buckets: Record<string, StoredBucket>;
  public readonly kmsKeyArn: pulumi.Output<string>;

  constructor(name: string, args: StorageArgs, opts?: pulumi.ComponentResourceOptions) {
    super('platform-kit:storage:Storage', name, {}, opts);
    const problems = validateStorageArgs(args);
    if (problems.length > 0) throw new pulumi.ResourceError(`Storage ${name}: ${problems.join('; ')}`, this);

    // Options every direct child shares: parented here, so it inherits this component's providers.
    const own = { parent: this };
    const ctx = awsContext(this);
    const { key } = createKmsKey(name, { description: `S3 buckets of ${name}`, ctx }, own);

    this.buckets = Object.fromEntries(Object.entries(args.buckets).map(([role, spec]) => [role, createBucket(role, spec)]));
    this.kmsKeyArn = key.arn;
    this.registerOutputs({
      buckets: Object.fromEntries(Object.entries(this.buckets).map(([role, b]) => [role, { name: b.name, arn: b.arn }])),
      kmsKeyArn: this.kmsKeyArn,
    });

    function createBucket(role: string, spec: BucketSpec): StoredBucket {
      const id = `${name}-${role}`;
      const bucket = new aws.s3.Bucket(id, { bucketPrefix: `${args.bucketPrefix ?? name}-${role}-`, forceDestroy: args.forceDestroy ?? false }, own);
      const child = { parent: bucket };
      const publicAccess = new aws.s3.BucketPublicAccessBlock(
        `${id}-public-access-block`,
        { bucket: bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
        child,
      );
      new aws.s3.BucketOwnershipControls(`${id}-ownership`, { bucket: bucket.id, rule: { objectOwnership: 'BucketOwnerEnforced' } }, child);
      new aws.s3.BucketLogging(
        `${id}-access-logging`,
        {
          bucket: bucket.id,
          targetBucket: args.accessLogs.bucketName,
          targetPrefix: `${args.accessLogs.prefix}${role}/`,
          targetObjectKeyFormat: { partitionedPrefix: { partitionDateSource: 'EventTime' } },
        },
        // S3 tests delivery when logging is turned on: the archive's policy must already grant it.
        { ...child, dependsOn: args.accessLogs.after ?? [] },
      );
      new aws.s3.BucketServerSideEncryptionConfiguration(
        `${id}-encryption`,
        { bucket: bucket.id, rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'aws:kms', kmsMasterKeyId: key.arn }, bucketKeyEnabled: true }] },
        child,
      );
      const versioning = new aws.s3.BucketVersioning(`${id}-versioning`, { bucket: bucket.id, versioningConfiguration: { status: 'Enabled' } }, child);
      new aws.s3.BucketLifecycleConfiguration(
        `${id}-lifecycle`,
        {
          bucket: bucket.id,
          rules: [
            { id: 'expire-current', status: 'Enabled', filter: { prefix: '' }, expiration: { days: spec.expireDays } },
            ...housekeepingRules(args.noncurrentVersionExpireDays ?? 30),
          ],
        },
        // Lifecycle on noncurrent versions needs versioning to exist first.
        { ...child, dependsOn: [versioning] },
      );
      new aws.s3.BucketPolicy(
        `${id}-policy`,
        {
          bucket: bucket.id,
          policy: bucket.arn.apply((arn) => JSON.stringify(policyDocument(...tlsOnlyStatements(arn)))),
        },
        // S3 rejects a policy put that races the public access block being set.
        { ...child, dependsOn: [publicAccess] },
      );
      return { name: bucket.bucket, arn: bucket.arn };
    }
  }
}
