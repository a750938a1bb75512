import * as pulumi from '@pulumi/pulumi';
import { awsContext } from '../shared/aws-context';
import { policyDocument, type PolicyStatement } from '../shared/iam';
import { createIrsaRole, type OidcIdentity } from './irsa';

/**
 * What a workload may do with objects of one bucket, under the shared prefix: `read`
 * (GetObject, and ListBucket so a missing key reads as 404), `write` (PutObject,
 * AbortMultipartUpload) and `delete` (DeleteObject: the file service removes objects no
 * row refers to, and files or results their owner deletes). Buckets are versioned: a
 * delete leaves a recoverable noncurrent version until the lifecycle expires it, and no
 * workload may delete versions.
 */
export type BucketPermission = 'read' | 'write' | 'delete';
export type BucketAccess = readonly BucketPermission[];

export interface WorkloadIdentitySpec {
  /** Kubernetes service account name (in `namespace`). */
  serviceAccount: string;
  /** Access per bucket, keyed by the bucket's role in `buckets`. */
  buckets: Record<string, BucketAccess>;
}

export interface IdentityArgs {
  /** The cluster's OIDC provider and issuer. Required. */
  oidc: OidcIdentity;
  /** Namespace of the workloads' service accounts. Required. */
  namespace: string;
  /** Buckets by role, with their ARNs. Required. */
  buckets: Record<string, { arn: pulumi.Input<string> }>;
  /** KMS key the buckets are encrypted with; objects cannot be read or written without it. Required. */
  bucketKeyArn: pulumi.Input<string>;
  /** Key prefix the services use (`S3_PREFIX`), ending in `/`. Grants stop at it. Default `files/`. */
  objectPrefix?: string;
  /** Workloads by role (e.g. `api`, `worker`); the role is part of the IAM role's logical name. Required. */
  workloads: Record<string, WorkloadIdentitySpec>;
}

/** Problems with the args, empty when they are usable. Pure, so tests can call it. */
export function validateIdentityArgs(args: IdentityArgs): string[] {
  const problems: string[] = [];
  const prefix = args.objectPrefix ?? 'files/';
  if (!prefix.endsWith('/') || prefix.startsWith('/') || prefix.includes('*')) problems.push(`objectPrefix ${prefix} must end in "/", not start with one, and hold no wildcard`);
  for (const [role, spec] of Object.entries(args.workloads)) {
    for (const bucket of Object.keys(spec.buckets)) {
      if (!(bucket in args.buckets)) problems.push(`workload ${role} asks for bucket ${bucket}, which is not one of ${Object.keys(args.buckets).join(', ')}`);
    }
    if (Object.keys(spec.buckets).length === 0) problems.push(`workload ${role} has no bucket access: give it none of this component's roles instead`);
    for (const [bucket, access] of Object.entries(spec.buckets)) {
      if (access.length === 0) problems.push(`workload ${role}: bucket ${bucket} lists no permission`);
      if (new Set(access).size !== access.length) problems.push(`workload ${role}: bucket ${bucket} repeats a permission`);
    }
  }
  return problems;
}

/**
 * The statements of one workload's policy: object actions only under the prefix, listing
 * only of the prefix, and the KMS calls S3 makes on the caller's behalf (and only through S3).
 */
export function workloadPolicyStatements(
  buckets: Record<string, string>,
  access: Record<string, BucketAccess>,
  prefix: string,
  keyArn: string,
  region: string,
): PolicyStatement[] {
  const statements: PolicyStatement[] = [];
  let reads = false;
  let writes = false;
  for (const [role, permissions] of Object.entries(access)) {
    const arn = buckets[role];
    if (arn === undefined) continue;
    const sid = role.replace(/[^A-Za-z0-9]/g, '');
    const actions: string[] = [];
    if (permissions.includes('read')) actions.push('s3:GetObject');
    if (permissions.includes('write')) actions.push('s3:PutObject', 's3:AbortMultipartUpload');
    if (permissions.includes('delete')) actions.push('s3:DeleteObject');
    statements.push({ Sid: `Objects${sid}`, Effect: 'Allow', Action: actions, Resource: `${arn}/${prefix}*` });
    if (permissions.includes('read')) {
      // Without ListBucket a missing key reads as 403 instead of 404.
      statements.push({ Sid: `List${sid}`, Effect: 'Allow', Action: 's3:ListBucket', Resource: arn, Condition: { StringLike: { 's3:prefix': `${prefix}*` } } });
    }
    reads ||= permissions.includes('read');
    writes ||= permissions.includes('write');
  }
  const kmsActions = [...(reads || writes ? ['kms:Decrypt'] : []), ...(writes ? ['kms:GenerateDataKey'] : [])];
  if (kmsActions.length > 0) {
    statements.push({ Sid: 'BucketKey', Effect: 'Allow', Action: kmsActions, Resource: keyArn, Condition: { StringEquals: { 'kms:ViaService': `s3.${region}.amazonaws.com` } } });
  }
  return statements;
}

/**
 * IRSA roles of the platform's own workloads (api, worker): each trusts exactly one
 * service account and may touch only its buckets, under the shared prefix, with the
 * actions it uses.
 */
export class Identity extends pulumi.ComponentResource {
  /** IAM role ARN per workload role, for the `eks.amazonaws.com/role-arn` annotation. */
  public readonly roleArns: Record<string, pulumi.Output<string>>;

  constructor(name: string, args: IdentityArgs, opts?: pulumi.ComponentResourceOptions) {
    super('platform-kit:identity:Identity', name, {}, opts);
    const problems = validateIdentityArgs(args);
    if (problems.length > 0) throw new pulumi.ResourceError(`Identity ${name}: ${problems.join('; ')}`, this);

    const ctx = awsContext(this);
    const prefix = args.objectPrefix ?? 'files/';
    const bucketArns = pulumi.all(Object.fromEntries(Object.entries(args.buckets).map(([role, b]) => [role, b.arn])));

    this.roleArns = Object.fromEntries(
      Object.entries(args.workloads).map(([role, spec]) => {
        const policy = pulumi
          .all([bucketArns, args.bucketKeyArn, ctx.region])
          .apply(([arns, keyArn, region]) => JSON.stringify(policyDocument(...workloadPolicyStatements(arns, spec.buckets, prefix, keyArn, region))));
        const irsa = createIrsaRole(
          `${name}-${role}`,
          { oidc: args.oidc, namespace: args.namespace, serviceAccount: spec.serviceAccount, description: `Workload ${role} (${args.namespace}/${spec.serviceAccount})`, policy },
          { parent: this },
        );
        return [role, irsa.arn];
      }),
    );
    this.registerOutputs({ roleArns: this.roleArns });
  }
}
