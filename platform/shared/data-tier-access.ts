import * as aws from '@pulumi/aws';
import type * as pulumi from '@pulumi/pulumi';

/**
 * A security group for a data store: no rules but ingress on its one port from the given
 * source security groups. No CIDR rules at all, so "the VPC" or "the internet" can never
 * creep in; and no egress rules, since a database or cache never opens connections.
 */
export function createDataTierSecurityGroup(
  name: string,
  args: { vpcId: pulumi.Input<string>; port: number; description: string; sources: Record<string, pulumi.Input<string>> },
  opts: pulumi.CustomResourceOptions,
): aws.ec2.SecurityGroup {
  const sg = new aws.ec2.SecurityGroup(name, { vpcId: args.vpcId, description: args.description }, opts);
  for (const [sourceName, sourceId] of Object.entries(args.sources)) {
    new aws.vpc.SecurityGroupIngressRule(
      `${name}-from-${sourceName}`,
      { securityGroupId: sg.id, referencedSecurityGroupId: sourceId, ipProtocol: 'tcp', fromPort: args.port, toPort: args.port, description: `${args.port}/tcp from ${sourceName}` },
      { ...opts, parent: sg },
    );
  }
  return sg;
}
