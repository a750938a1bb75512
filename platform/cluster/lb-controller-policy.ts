import { policyDocument, type PolicyDocument, type PolicyStatement } from '../shared/iam';

export interface LbControllerScope {
  partition: string;
  region: string;
  accountId: string;
  vpcId: string;
}

/**
 * Optional integrations of the controller. Each is passed to the chart AND decides the IAM
 * actions granted, from this one value: the controller calls WAFv2 and Shield on every
 * Ingress reconcile unless told not to (its flags default to on), so a chart/IAM mismatch
 * is an AccessDenied on the first Ingress.
 */
export interface LbControllerFeatures {
  /** Attach WAFv2 web ACLs named by `alb.ingress.kubernetes.io/wafv2-acl-arn`. */
  wafv2: boolean;
  /** Shield Advanced protection of ALBs (`alb.ingress.kubernetes.io/shield-advanced-protection`). */
  shield: boolean;
}

/** The chart values that switch the integrations; WAF Classic (waf-regional) is always off. */
export function loadBalancerControllerFeatureValues(f: LbControllerFeatures): { enableWaf: boolean; enableWafv2: boolean; enableShield: boolean } {
  return { enableWaf: false, enableWafv2: f.wafv2, enableShield: f.shield };
}

const CLUSTER_TAG = 'elbv2.k8s.aws/cluster';

/**
 * IAM policy of the AWS Load Balancer Controller, narrower than the upstream sample:
 * - WAFv2 and Shield actions only when the feature is on (`features`), writes scoped to this
 *   account's web ACLs, ALBs and Shield protections; never WAF Classic or Cognito;
 * - every write is confined to this account and region, security-group writes to this
 *   VPC, and deletes and modifications to resources the controller itself tagged with
 *   `elbv2.k8s.aws/cluster`;
 * - `Resource: "*"` only on read-only Describe/List/Get calls, which IAM cannot scope.
 */
export function loadBalancerControllerPolicy(s: LbControllerScope, features: LbControllerFeatures): PolicyDocument {
  const ec2 = (r: string) => `arn:${s.partition}:ec2:${s.region}:${s.accountId}:${r}`;
  const elb = (r: string) => `arn:${s.partition}:elasticloadbalancing:${s.region}:${s.accountId}:${r}`;
  const securityGroups = ec2('security-group/*');
  const balancers = [elb('loadbalancer/app/*/*'), elb('loadbalancer/net/*/*')];
  const targetGroups = elb('targetgroup/*/*');
  const listeners = [elb('listener/app/*/*/*'), elb('listener/net/*/*/*'), elb('listener-rule/app/*/*/*/*'), elb('listener-rule/net/*/*/*/*')];
  const taggedByController = { Null: { [`aws:ResourceTag/${CLUSTER_TAG}`]: 'false' } };

  const optional: PolicyStatement[] = [];
  if (features.wafv2) {
    optional.push(
      { Sid: 'ReadWafv2Associations', Effect: 'Allow', Action: ['wafv2:GetWebACL', 'wafv2:GetWebACLForResource'], Resource: '*' },
      {
        Sid: 'AssociateWafv2WebAcls',
        Effect: 'Allow',
        // SetWebAcl is the permission-only half of an association on the ALB side.
        Action: ['wafv2:AssociateWebACL', 'wafv2:DisassociateWebACL', 'elasticloadbalancing:SetWebAcl'],
        Resource: [`arn:${s.partition}:wafv2:${s.region}:${s.accountId}:regional/webacl/*/*`, elb('loadbalancer/app/*/*')],
      },
    );
  }
  if (features.shield) {
    optional.push(
      { Sid: 'ReadShieldProtections', Effect: 'Allow', Action: ['shield:GetSubscriptionState', 'shield:DescribeProtection'], Resource: '*' },
      { Sid: 'ManageShieldProtections', Effect: 'Allow', Action: ['shield:CreateProtection', 'shield:DeleteProtection'], Resource: `arn:${s.partition}:shield::${s.accountId}:protection/*` },
    );
  }

  return policyDocument(
    {
      Sid: 'CreateElbServiceLinkedRole',
      Effect: 'Allow',
      Action: 'iam:CreateServiceLinkedRole',
      Resource: `arn:${s.partition}:iam::${s.accountId}:role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing`,
      Condition: { StringEquals: { 'iam:AWSServiceName': 'elasticloadbalancing.amazonaws.com' } },
    },
    {
      Sid: 'ReadOnlyDiscovery',
      Effect: 'Allow',
      Action: [
        'ec2:DescribeAccountAttributes',
        'ec2:DescribeAddresses',
        'ec2:DescribeAvailabilityZones',
        'ec2:DescribeInternetGateways',
        'ec2:DescribeVpcs',
        'ec2:DescribeVpcPeeringConnections',
        'ec2:DescribeSubnets',
        'ec2:DescribeSecurityGroups',
        'ec2:DescribeInstances',
        'ec2:DescribeNetworkInterfaces',
        'ec2:DescribeTags',
        'ec2:DescribeRouteTables',
        'ec2:GetCoipPoolUsage',
        'ec2:DescribeCoipPools',
        'ec2:GetSecurityGroupsForVpc',
        'ec2:DescribeIpamPools',
        'elasticloadbalancing:DescribeLoadBalancers',
        'elasticloadbalancing:DescribeLoadBalancerAttributes',
        'elasticloadbalancing:DescribeListeners',
        'elasticloadbalancing:DescribeListenerCertificates',
        'elasticloadbalancing:DescribeListenerAttributes',
        'elasticloadbalancing:DescribeSSLPolicies',
        'elasticloadbalancing:DescribeRules',
        'elasticloadbalancing:DescribeTargetGroups',
        'elasticloadbalancing:DescribeTargetGroupAttributes',
        'elasticloadbalancing:DescribeTargetHealth',
        'elasticloadbalancing:DescribeTags',
        'elasticloadbalancing:DescribeTrustStores',
        'elasticloadbalancing:DescribeCapacityReservation',
        'acm:ListCertificates',
        'acm:DescribeCertificate',
      ],
      Resource: '*',
    },
    {
      Sid: 'CreateSecurityGroupsInThisVpc',
      Effect: 'Allow',
      Action: 'ec2:CreateSecurityGroup',
      Resource: [ec2(`vpc/${s.vpcId}`), securityGroups],
    },
    {
      Sid: 'TagSecurityGroupsOnCreate',
      Effect: 'Allow',
      Action: 'ec2:CreateTags',
      Resource: securityGroups,
      Condition: { StringEquals: { 'ec2:CreateAction': 'CreateSecurityGroup' }, Null: { [`aws:RequestTag/${CLUSTER_TAG}`]: 'false' } },
    },
    {
      Sid: 'RetagOwnSecurityGroups',
      Effect: 'Allow',
      Action: ['ec2:CreateTags', 'ec2:DeleteTags'],
      Resource: securityGroups,
      Condition: { Null: { [`aws:RequestTag/${CLUSTER_TAG}`]: 'true', [`aws:ResourceTag/${CLUSTER_TAG}`]: 'false' } },
    },
    {
      Sid: 'ManageOwnSecurityGroups',
      Effect: 'Allow',
      Action: ['ec2:AuthorizeSecurityGroupIngress', 'ec2:RevokeSecurityGroupIngress', 'ec2:DeleteSecurityGroup'],
      Resource: securityGroups,
      Condition: taggedByController,
    },
    {
      // Target-group traffic needs ingress rules on the node security group, which the
      // controller did not create: allowed, but only on groups of this VPC.
      Sid: 'OpenNodeSecurityGroupsInThisVpc',
      Effect: 'Allow',
      Action: ['ec2:AuthorizeSecurityGroupIngress', 'ec2:RevokeSecurityGroupIngress'],
      Resource: securityGroups,
      Condition: { ArnEquals: { 'ec2:Vpc': ec2(`vpc/${s.vpcId}`) } },
    },
    {
      Sid: 'CreateTaggedBalancers',
      Effect: 'Allow',
      Action: ['elasticloadbalancing:CreateLoadBalancer', 'elasticloadbalancing:CreateTargetGroup'],
      Resource: [...balancers, targetGroups],
      Condition: { Null: { [`aws:RequestTag/${CLUSTER_TAG}`]: 'false' } },
    },
    {
      Sid: 'TagOnCreate',
      Effect: 'Allow',
      Action: 'elasticloadbalancing:AddTags',
      Resource: [...balancers, targetGroups],
      Condition: { StringEquals: { 'elasticloadbalancing:CreateAction': ['CreateTargetGroup', 'CreateLoadBalancer'] }, Null: { [`aws:RequestTag/${CLUSTER_TAG}`]: 'false' } },
    },
    {
      Sid: 'RetagOwnBalancers',
      Effect: 'Allow',
      Action: ['elasticloadbalancing:AddTags', 'elasticloadbalancing:RemoveTags'],
      Resource: [...balancers, targetGroups],
      Condition: { Null: { [`aws:RequestTag/${CLUSTER_TAG}`]: 'true', [`aws:ResourceTag/${CLUSTER_TAG}`]: 'false' } },
    },
    {
      Sid: 'ManageOwnBalancers',
      Effect: 'Allow',
      Action: [
        'elasticloadbalancing:ModifyLoadBalancerAttributes',
        'elasticloadbalancing:SetIpAddressType',
        'elasticloadbalancing:SetSecurityGroups',
        'elasticloadbalancing:SetSubnets',
        'elasticloadbalancing:DeleteLoadBalancer',
        'elasticloadbalancing:ModifyTargetGroup',
        'elasticloadbalancing:ModifyTargetGroupAttributes',
        'elasticloadbalancing:DeleteTargetGroup',
        'elasticloadbalancing:ModifyCapacityReservation',
      ],
      Resource: [...balancers, targetGroups],
      Condition: taggedByController,
    },
    {
      Sid: 'RegisterTargets',
      Effect: 'Allow',
      Action: ['elasticloadbalancing:RegisterTargets', 'elasticloadbalancing:DeregisterTargets'],
      Resource: targetGroups,
    },
    {
      Sid: 'ManageListenersAndRules',
      Effect: 'Allow',
      Action: [
        'elasticloadbalancing:CreateListener',
        'elasticloadbalancing:DeleteListener',
        'elasticloadbalancing:ModifyListener',
        'elasticloadbalancing:ModifyListenerAttributes',
        'elasticloadbalancing:AddListenerCertificates',
        'elasticloadbalancing:RemoveListenerCertificates',
        'elasticloadbalancing:CreateRule',
        'elasticloadbalancing:DeleteRule',
        'elasticloadbalancing:ModifyRule',
        'elasticloadbalancing:SetRulePriorities',
        'elasticloadbalancing:AddTags',
        'elasticloadbalancing:RemoveTags',
      ],
      Resource: [...balancers, ...listeners],
    },
    ...optional,
  );
}
