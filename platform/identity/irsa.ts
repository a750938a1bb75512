import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { policyDocument } from '../shared/iam';

/** The cluster's OIDC identity, as IRSA trust policies need it. */
export interface OidcIdentity {
  /** ARN of the IAM OIDC provider registered for the cluster. */
  providerArn: pulumi.Input<string>;
  /** Issuer host and path without `https://`, e.g. `oidc.eks.eu-west-1.amazonaws.com/id/ABC`. */
  issuer: pulumi.Input<string>;
}

export interface IrsaRoleArgs {
  /** The cluster's OIDC provider and issuer. Required. */
  oidc: OidcIdentity;
  /** Namespace of the Kubernetes service account allowed to assume the role. */
  namespace: string;
  /** Name of that service account. */
  serviceAccount: string;
  /** Shown in the IAM console. */
  description: string;
  /** Inline policy (JSON). Default none. */
  policy?: pulumi.Input<string>;
  /**
   * Managed policies to attach, keyed by a short stable name used in the attachment's
   * logical name (a rename replaces the attachment). Default none.
   */
  managedPolicies?: Record<string, pulumi.Input<string>>;
}

export interface IrsaRole {
  role: aws.iam.Role;
  arn: pulumi.Output<string>;
  /** The inline policy and attachments: what uses the role waits for them, or its first calls are denied. */
  grants: pulumi.Resource[];
}

/**
 * The trust policy of an IRSA role: only the one service account, and only tokens minted
 * for STS. Both conditions matter; without `:sub` any pod in the cluster could assume it.
 */
export function irsaTrustPolicy(providerArn: string, issuer: string, namespace: string, serviceAccount: string): string {
  return JSON.stringify(
    policyDocument({
      Effect: 'Allow',
      Principal: { Federated: providerArn },
      Action: 'sts:AssumeRoleWithWebIdentity',
      Condition: {
        StringEquals: {
          [`${issuer}:sub`]: `system:serviceaccount:${namespace}:${serviceAccount}`,
          [`${issuer}:aud`]: 'sts.amazonaws.com',
        },
      },
    }),
  );
}

/** An IAM role for a Kubernetes service account, with its inline policy and attachments as children. */
export function createIrsaRole(name: string, args: IrsaRoleArgs, opts: pulumi.CustomResourceOptions): IrsaRole {
  const role = new aws.iam.Role(
    name,
    {
      description: args.description,
      assumeRolePolicy: pulumi
        .all([args.oidc.providerArn, args.oidc.issuer])
        .apply(([arn, issuer]) => irsaTrustPolicy(arn, issuer, args.namespace, args.serviceAccount)),
      maxSessionDuration: 3600,
    },
    opts,
  );
  const grants: pulumi.Resource[] = [];
  if (args.policy !== undefined) {
    grants.push(new aws.iam.RolePolicy(`${name}-policy`, { role: role.id, policy: args.policy }, { ...opts, parent: role }));
  }
  for (const [key, policyArn] of Object.entries(args.managedPolicies ?? {})) {
    grants.push(new aws.iam.RolePolicyAttachment(`${name}-${key}`, { role: role.name, policyArn }, { ...opts, parent: role }));
  }
  return { role, arn: role.arn, grants };
}
