import * as aws from '@pulumi/aws';
import type * as pulumi from '@pulumi/pulumi';

/**
 * Account facts every ARN and service principal is built from. Asked of the provider the
 * caller inherits (via `parent`), never hard-coded: the same program runs in aws-cn and
 * aws-us-gov, where ARNs start `arn:aws-cn:` / `arn:aws-us-gov:`.
 */
export interface AwsContext {
  partition: pulumi.Output<string>;
  dnsSuffix: pulumi.Output<string>;
  accountId: pulumi.Output<string>;
  region: pulumi.Output<string>;
}

export function awsContext(parent: pulumi.Resource): AwsContext {
  const opts = { parent };
  const partition = aws.getPartitionOutput({}, opts);
  const identity = aws.getCallerIdentityOutput({}, opts);
  const region = aws.getRegionOutput({}, opts);
  return {
    partition: partition.partition,
    dnsSuffix: partition.dnsSuffix,
    accountId: identity.accountId,
    region: region.region,
  };
}
