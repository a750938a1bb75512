import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { AwsContext } from './aws-context';

export interface KmsKeyArgs {
  /** What the key protects, shown in the console. */
  description: string;
  /** Partition, account and region the key policy names. Required. */
  ctx: AwsContext;
  /**
   * Service principals (short names such as `logs`) that encrypt with the key directly,
   * rather than through a grant made on a caller's behalf. CloudWatch Logs is the usual
   * one: it needs the key policy to name it. Default none.
   */
  servicePrincipals?: 'logs'[];
  /** Days between scheduled deletion and destruction. Default 30 (the maximum: a deleted key loses its data). */
  deletionWindowInDays?: number;
}

export interface KmsKey {
  key: aws.kms.Key;
  alias: aws.kms.Alias;
}

/**
 * A customer-managed key with rotation on and an explicit key policy: the account root
 * administers it (the AWS default, which lets IAM policies grant use of the key) and the
 * named services may use it within this account only. One key per concern keeps a key's
 * blast radius and its audit trail to one kind of data.
 */
export function createKmsKey(name: string, args: KmsKeyArgs, opts: pulumi.CustomResourceOptions): KmsKey {
  const { ctx } = args;
  const policy = pulumi.all([ctx.partition, ctx.accountId, ctx.region]).apply(([partition, account, region]) =>
    JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'AccountAdministers',
          Effect: 'Allow',
          Principal: { AWS: `arn:${partition}:iam::${account}:root` },
          Action: 'kms:*',
          Resource: '*',
        },
        ...(args.servicePrincipals ?? []).map((svc) => ({
          Sid: `${svc}UsesKey`,
          Effect: 'Allow',
          Principal: { Service: `${svc}.${region}.amazonaws.com` },
          Action: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
          Resource: '*',
          Condition: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:${partition}:logs:${region}:${account}:*` } },
        })),
      ],
    }),
  );
  const key = new aws.kms.Key(
    `${name}-key`,
    {
      description: args.description,
      enableKeyRotation: true,
      deletionWindowInDays: args.deletionWindowInDays ?? 30,
      policy,
    },
    opts,
  );
  // Aliases are unique per account and region: include project and stack so dev and prod can share an account.
  const alias = new aws.kms.Alias(
    `${name}-key-alias`,
    { name: `alias/${pulumi.getProject()}/${pulumi.getStack()}/${name}`, targetKeyId: key.keyId },
    { ...opts, parent: key },
  );
  return { key, alias };
}
