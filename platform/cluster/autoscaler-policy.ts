import { policyDocument, type PolicyDocument } from '../shared/iam';

export interface AutoscalerScope {
  partition: string;
  region: string;
  accountId: string;
  clusterName: string;
}

/**
 * IAM policy of the Cluster Autoscaler (IRSA), for EKS managed node groups found by
 * auto-discovery. EKS tags the Auto Scaling group of every managed node group
 * `k8s.io/cluster-autoscaler/<cluster>: owned`; the autoscaler may change the size of, and
 * terminate instances in, those groups only. Everything else is read-only: listing groups
 * and instance types (IAM cannot scope these) and the node groups' own labels and taints
 * (`eks:DescribeNodegroup`), which it needs to scale a tainted pool up from its minimum.
 */
export function clusterAutoscalerPolicy(s: AutoscalerScope): PolicyDocument {
  return policyDocument(
    {
      Sid: 'DiscoverGroupsAndInstanceTypes',
      Effect: 'Allow',
      Action: [
        'autoscaling:DescribeAutoScalingGroups',
        'autoscaling:DescribeAutoScalingInstances',
        'autoscaling:DescribeLaunchConfigurations',
        'autoscaling:DescribeScalingActivities',
        'autoscaling:DescribeTags',
        'ec2:DescribeImages',
        'ec2:DescribeInstanceTypes',
        'ec2:DescribeLaunchTemplateVersions',
        'ec2:GetInstanceTypesFromInstanceRequirements',
      ],
      Resource: '*',
    },
    {
      Sid: 'ReadOwnNodeGroups',
      Effect: 'Allow',
      Action: 'eks:DescribeNodegroup',
      Resource: `arn:${s.partition}:eks:${s.region}:${s.accountId}:nodegroup/${s.clusterName}/*/*`,
    },
    {
      Sid: 'ScaleOwnNodeGroups',
      Effect: 'Allow',
      Action: ['autoscaling:SetDesiredCapacity', 'autoscaling:TerminateInstanceInAutoScalingGroup'],
      Resource: `arn:${s.partition}:autoscaling:${s.region}:${s.accountId}:autoScalingGroup:*:autoScalingGroupName/*`,
      Condition: { StringEquals: { [`aws:ResourceTag/k8s.io/cluster-autoscaler/${s.clusterName}`]: 'owned' } },
    },
  );
}
