import * as pulumi from '@pulumi/pulumi';

/** An IAM policy statement, typed so that a typo in `Effect` is a compile error. */
export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Principal?: Record<string, string | string[]> | '*';
  Action: string | string[];
  Resource?: string | string[];
  Condition?: Record<string, Record<string, string | string[] | boolean>>;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

export function policyDocument(...statements: PolicyStatement[]): PolicyDocument {
  return { Version: '2012-10-17', Statement: statements };
}

/** Trust policy for an AWS service (`ec2`, `eks`, `vpc-flow-logs`, …) confined to this account. */
export function serviceTrustPolicy(service: string, accountId: string): string {
  return JSON.stringify(
    policyDocument({
      Effect: 'Allow',
      Principal: { Service: `${service}.amazonaws.com` },
      Action: 'sts:AssumeRole',
      // Confused-deputy guard: only this account's use of the service may assume the role.
      ...(service === 'ec2' || service === 'eks' ? {} : { Condition: { StringEquals: { 'aws:SourceAccount': accountId } } }),
    }),
  );
}

/** `arn:<partition>:iam::aws:policy/<name>`, for AWS-managed policies. */
export function awsManagedPolicyArn(partition: pulumi.Input<string>, name: string): pulumi.Output<string> {
  return pulumi.interpolate`arn:${partition}:iam::aws:policy/${name}`;
}
