import type { PolicyResource } from '@pulumi/policy';
import {
  type PlatformPolicy,
  arr,
  at,
  companionsOf,
  describe,
  known,
  obj,
  oneOrMany,
  policyDocument,
  referencedBy,
  statements,
  str,
  stackPolicy,
} from '../lib/policy';

export const BUCKET_TYPES = ['aws:s3/bucket:Bucket', 'aws:s3/bucketV2:BucketV2'] as const;
const PUBLIC_ACCESS_BLOCK = ['aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock'];
const ACL_TYPES = ['aws:s3/bucketAcl:BucketAcl', 'aws:s3/bucketAclV2:BucketAclV2'];
const SSE_TYPES = [
  'aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration',
  'aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2',
];
const VERSIONING_TYPES = ['aws:s3/bucketVersioning:BucketVersioning', 'aws:s3/bucketVersioningV2:BucketVersioningV2'];
const BUCKET_POLICY = ['aws:s3/bucketPolicy:BucketPolicy'];
const LOGGING_TYPES = ['aws:s3/bucketLogging:BucketLogging', 'aws:s3/bucketLoggingV2:BucketLoggingV2'];
const LIFECYCLE_TYPES = ['aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration', 'aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2'];

const PUBLIC_ACLS = new Set(['public-read', 'public-read-write', 'authenticated-read']);
const PAB_FLAGS = ['blockPublicAcls', 'blockPublicPolicy', 'ignorePublicAcls', 'restrictPublicBuckets'] as const;

function buckets(resources: readonly PolicyResource[]): PolicyResource[] {
  return resources.filter((r) => (BUCKET_TYPES as readonly string[]).includes(r.type));
}

/** Companions written with a literal bucket name (rather than `bucket.id`) still belong to the bucket. */
function companions(bucket: PolicyResource, resources: readonly PolicyResource[], types: readonly string[]): PolicyResource[] {
  const name = known(() => str(bucket.props.bucket));
  return companionsOf(bucket, resources, types, 'bucket', (c) => name !== undefined && known(() => str(c.props.bucket)) === name);
}

const allBucketTypes = (extra: readonly string[]) => [...BUCKET_TYPES, ...extra];

/**
 * Buckets that receive S3 server access logs: the target of a BucketLogging (by reference
 * or literal name) or of a bucket's inline `logging`. S3 cannot deliver access logs into an
 * SSE-KMS bucket, and a log bucket logging into itself would log every delivery.
 */
function accessLogTargets(resources: readonly PolicyResource[]): Set<string> {
  const targets = new Set<string>();
  const all = buckets(resources);
  const byName = new Map(all.flatMap((b) => {
    const name = known(() => str(b.props.bucket));
    return name ? [[name, b.urn] as const] : [];
  }));
  for (const logging of resources.filter((r) => LOGGING_TYPES.includes(r.type))) {
    // A bucket that logs into itself is not thereby a log bucket.
    const source = new Set(referencedBy(logging, 'bucket').map((b) => b.urn));
    const refs = referencedBy(logging, 'targetBucket').filter((r) => (BUCKET_TYPES as readonly string[]).includes(r.type)).map((r) => r.urn);
    const literal = byName.get(known(() => str(logging.props.targetBucket)) ?? '');
    for (const urn of [...refs, ...(literal ? [literal] : [])]) if (!source.has(urn)) targets.add(urn);
  }
  for (const b of all) {
    const inline = known(() => str(at(b.props.logging, 'targetBucket')));
    const target = byName.get(inline ?? '');
    if (target) targets.add(target);
  }
  return targets;
}

export const s3Policies: PlatformPolicy[] = [
  stackPolicy({
    name: 'aws-s3-bucket-public-access-blocked',
    description:
      'Every S3 bucket has a BucketPublicAccessBlock with blockPublicAcls, blockPublicPolicy, ignorePublicAcls and restrictPublicBuckets all true, and no public canned ACL (public-read, public-read-write, authenticated-read).',
    control: { framework: 'AWS FSBP', id: 'S3.8', url: 'https://docs.aws.amazon.com/securityhub/latest/userguide/s3-controls.html#s3-8' },
    concern: 'security',
    severity: 'critical',
    remediation: 'Create an aws.s3.BucketPublicAccessBlock for the bucket with all four flags set to true; drop any public ACL.',
    types: allBucketTypes([...PUBLIC_ACCESS_BLOCK, ...ACL_TYPES]),
    validate: (resources, _args, report) => {
      for (const bucket of buckets(resources)) {
        const blocks = companions(bucket, resources, PUBLIC_ACCESS_BLOCK);
        if (blocks.length === 0) {
          report(`${describe(bucket)} has no BucketPublicAccessBlock: public access is not blocked.`, bucket.urn);
        }
        for (const block of blocks) {
          const open = PAB_FLAGS.filter((f) => known(() => block.props[f]) !== true);
          if (open.length > 0) report(`${describe(block)} for ${describe(bucket)} must set ${open.join(', ')} to true.`, block.urn);
        }
        const acls = [known(() => str(bucket.props.acl)), ...companions(bucket, resources, ACL_TYPES).map((a) => known(() => str(a.props.acl)))];
        for (const acl of acls) {
          if (acl !== undefined && PUBLIC_ACLS.has(acl)) report(`${describe(bucket)} uses the public canned ACL '${acl}'.`, bucket.urn);
        }
      }
    },
  }),
  stackPolicy({
    name: 'aws-s3-bucket-encrypted-with-kms',
    description:
      'Every S3 bucket has a server-side encryption configuration whose default algorithm is aws:kms or aws:kms:dsse (a key the platform controls and audits). An absent configuration counts as unencrypted. A bucket that receives S3 server access logs (the target of a BucketLogging) may use AES256 (SSE-S3) instead: S3 cannot deliver access logs into an SSE-KMS bucket.',
    control: { framework: 'AWS FSBP', id: 'S3.17', url: 'https://docs.aws.amazon.com/securityhub/latest/userguide/s3-controls.html#s3-17' },
    concern: 'security',
    severity: 'high',
    remediation: 'Add an aws.s3.BucketServerSideEncryptionConfiguration with applyServerSideEncryptionByDefault { sseAlgorithm: "aws:kms", kmsMasterKeyId }.',
    types: allBucketTypes(SSE_TYPES),
    validate: (resources, _args, report) => {
      const logTargets = accessLogTargets(resources);
      for (const bucket of buckets(resources)) {
        const inline = known(() => str(at(bucket.props.serverSideEncryptionConfiguration, 'rule', 'applyServerSideEncryptionByDefault', 'sseAlgorithm')));
        const algorithms = [
          ...(inline ? [inline] : []),
          ...companions(bucket, resources, SSE_TYPES).flatMap((c) =>
            arr(known(() => c.props.rules)).map((rule) => str(at(rule, 'applyServerSideEncryptionByDefault', 'sseAlgorithm')) ?? 'unset'),
          ),
        ];
        if (algorithms.length === 0) {
          report(`${describe(bucket)} has no server-side encryption configuration.`, bucket.urn);
        } else if (logTargets.has(bucket.urn)) {
          if (!algorithms.every((a) => a === 'AES256')) report(`${describe(bucket)} receives S3 access logs, which S3 delivers only into SSE-S3 (AES256) buckets; it uses ${algorithms.join(', ')}.`, bucket.urn);
        } else if (!algorithms.every((a) => a === 'aws:kms' || a === 'aws:kms:dsse')) {
          report(`${describe(bucket)} encrypts with ${algorithms.join(', ')}; use aws:kms with a customer managed key.`, bucket.urn);
        }
      }
    },
  }),
  stackPolicy({
    name: 'aws-s3-bucket-versioning-enabled',
    description:
      'Every S3 bucket has versioning Enabled (a BucketVersioning resource), so an overwritten or deleted object can be recovered. Required in prod, advised in dev.',
    control: { framework: 'AWS FSBP', id: 'S3.14', url: 'https://docs.aws.amazon.com/securityhub/latest/userguide/s3-controls.html#s3-14' },
    concern: 'resilience',
    severity: 'medium',
    remediation: 'Add an aws.s3.BucketVersioning with versioningConfiguration { status: "Enabled" } (and a noncurrent-version lifecycle rule to bound cost).',
    types: allBucketTypes(VERSIONING_TYPES),
    validate: (resources, _args, report) => {
      for (const bucket of buckets(resources)) {
        const statuses = [
          ...(known(() => at(bucket.props.versioning, 'enabled')) === true ? ['Enabled'] : []),
          ...companions(bucket, resources, VERSIONING_TYPES).map((v) => known(() => str(at(v.props.versioningConfiguration, 'status'))) ?? 'unset'),
        ];
        if (!statuses.includes('Enabled')) {
          report(`${describe(bucket)} does not have versioning enabled${statuses.length ? ` (status ${statuses.join(', ')})` : ''}.`, bucket.urn);
        }
      }
    },
  }),
  stackPolicy({
    name: 'aws-s3-bucket-tls-only',
    description:
      'Every S3 bucket has a bucket policy that denies all S3 actions to every principal when aws:SecureTransport is false, so objects never travel in clear text.',
    control: { framework: 'AWS FSBP', id: 'S3.5', url: 'https://docs.aws.amazon.com/securityhub/latest/userguide/s3-controls.html#s3-5' },
    concern: 'security',
    severity: 'high',
    remediation:
      'Attach an aws.s3.BucketPolicy with a statement { Effect: "Deny", Principal: "*", Action: "s3:*", Resource: [bucketArn, `${bucketArn}/*`], Condition: { Bool: { "aws:SecureTransport": "false" } } }.',
    types: allBucketTypes(BUCKET_POLICY),
    validate: (resources, _args, report) => {
      for (const bucket of buckets(resources)) {
        const docs = [known(() => bucket.props.policy), ...companions(bucket, resources, BUCKET_POLICY).map((p) => known(() => p.props.policy))]
          .filter((d) => d !== undefined)
          .map(policyDocument);
        if (!docs.some(deniesInsecureTransport)) {
          report(`${describe(bucket)} has no bucket policy denying requests without TLS (aws:SecureTransport = false).`, bucket.urn);
        }
      }
    },
  }),
  stackPolicy({
    name: 'aws-s3-bucket-access-logging',
    description:
      'Every S3 bucket sends server access logs (a BucketLogging, or inline logging) to another bucket, so who read or wrote which object can be answered. A bucket that itself receives access logs is exempt: logging it into itself would log every delivery.',
    control: { framework: 'AWS FSBP', id: 'S3.9', url: 'https://docs.aws.amazon.com/securityhub/latest/userguide/s3-controls.html#s3-9' },
    concern: 'security',
    severity: 'medium',
    remediation: 'Add an aws.s3.BucketLogging with targetBucket set to the log archive bucket and a targetPrefix per bucket.',
    types: allBucketTypes(LOGGING_TYPES),
    validate: (resources, _args, report) => {
      const logTargets = accessLogTargets(resources);
      for (const bucket of buckets(resources)) {
        if (logTargets.has(bucket.urn)) continue;
        const inline = known(() => str(at(bucket.props.logging, 'targetBucket')));
        const configs = companions(bucket, resources, LOGGING_TYPES);
        if (inline === undefined && configs.length === 0) {
          report(`${describe(bucket)} has no server access logging.`, bucket.urn);
          continue;
        }
        for (const c of configs) {
          if (referencedBy(c, 'targetBucket').some((t) => t.urn === bucket.urn)) report(`${describe(c)} logs ${describe(bucket)} into itself.`, c.urn);
        }
      }
    },
  }),
  stackPolicy({
    name: 'aws-s3-bucket-lifecycle-configured',
    description:
      'Every S3 bucket has a lifecycle configuration with at least one enabled rule (expiry, noncurrent-version expiry or aborting incomplete uploads), so stored data, old versions and logs do not grow without bound.',
    control: { framework: 'AWS FSBP', id: 'S3.13', url: 'https://docs.aws.amazon.com/securityhub/latest/userguide/s3-controls.html#s3-13' },
    concern: 'cost',
    severity: 'low',
    remediation: 'Add an aws.s3.BucketLifecycleConfiguration: expire current objects after the data\'s lifetime, noncurrent versions after a few weeks, and abort incomplete multipart uploads after a day.',
    types: allBucketTypes(LIFECYCLE_TYPES),
    validate: (resources, _args, report) => {
      for (const bucket of buckets(resources)) {
        const rules = [
          ...arr(known(() => bucket.props.lifecycleRules)),
          ...companions(bucket, resources, LIFECYCLE_TYPES).flatMap((c) => arr(known(() => c.props.rules))),
        ];
        const enabled = rules.filter((r) => at(r, 'status') === 'Enabled' || at(r, 'enabled') === true);
        if (enabled.length === 0) report(`${describe(bucket)} has no enabled lifecycle rule.`, bucket.urn);
      }
    },
  }),
];

function deniesInsecureTransport(doc: ReturnType<typeof policyDocument>): boolean {
  return statements(doc).some((s) => {
    if (s.Effect !== 'Deny') return false;
    const principal = s.Principal;
    const everyone = principal === '*' || oneOrMany(obj(principal)?.AWS).includes('*');
    const actions = oneOrMany(s.Action);
    const allActions = actions.includes('s3:*') || actions.includes('*');
    const secure = at(s.Condition, 'Bool', 'aws:SecureTransport');
    return everyone && allActions && (secure === false || secure === 'false');
  });
}
