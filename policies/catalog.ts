import type { EnforcementLevel, PolicyPackConfig, ResourceValidationPolicy, StackValidationPolicy } from '@pulumi/policy';
import { cloudwatchPolicies } from './aws/cloudwatch';
import { ecrPolicies } from './aws/ecr';
import { eksPolicies } from './aws/eks';
import { elasticachePolicies } from './aws/elasticache';
import { iamPolicies } from './aws/iam';
import { kmsPolicies } from './aws/kms';
import { networkPolicies } from './aws/network';
import { rdsPolicies } from './aws/rds';
import { s3Policies } from './aws/s3';
import { tagPolicies } from './aws/tags';
import { teardownPolicies } from './aws/teardown';
import { costPolicies } from './aws/cost';
import { admissionPolicies } from './kubernetes/admission';
import { helmPolicies } from './kubernetes/helm';
import { ingressPolicies } from './kubernetes/ingress';
import { podSecurityPolicies } from './kubernetes/pod-security';
import { kubernetesStackPolicies } from './kubernetes/stack';
import { workloadPolicies } from './kubernetes/workloads';
import { type PlatformPolicy, type PolicyStack, STACKS, isStackPolicy, levelFor, stackFromEnv } from './lib/policy';
import { monitoringCrdPolicies } from './stack/monitoring-crds';
import { queueDashboardPolicies } from './stack/queue-dashboard';

export { STACKS, isStackPolicy, levelFor, stackFromEnv };
export type { PlatformPolicy, PolicyStack };

export const PACK_NAME = 'platform-kit-guardrails';

/** Every rule of the pack, grouped as the README lists them. */
export const POLICY_GROUPS: readonly { title: string; policies: readonly PlatformPolicy[] }[] = [
  { title: 'S3', policies: s3Policies },
  { title: 'RDS', policies: rdsPolicies },
  { title: 'ElastiCache', policies: elasticachePolicies },
  { title: 'EKS', policies: eksPolicies },
  { title: 'Network', policies: networkPolicies },
  { title: 'IAM', policies: iamPolicies },
  { title: 'KMS and CloudWatch Logs', policies: [...kmsPolicies, ...cloudwatchPolicies] },
  { title: 'ECR', policies: ecrPolicies },
  { title: 'Teardown', policies: teardownPolicies },
  { title: 'Cost and ownership', policies: [...tagPolicies, ...costPolicies] },
  { title: 'Kubernetes workloads', policies: [...podSecurityPolicies, ...workloadPolicies, ...ingressPolicies] },
  { title: 'Kubernetes stack', policies: [...kubernetesStackPolicies, ...admissionPolicies] },
  { title: 'Helm', policies: helmPolicies },
  { title: 'Platform Kit', policies: [...queueDashboardPolicies, ...monitoringCrdPolicies] },
];

export const ALL_POLICIES: readonly PlatformPolicy[] = POLICY_GROUPS.flatMap((g) => g.policies);

export function levelOf(policy: PlatformPolicy, stack: PolicyStack): EnforcementLevel {
  return levelFor(policy.platform.concern, stack);
}

/**
 * The policy-pack config for a stack: each policy's enforcement level and its knobs. The pack
 * hands it to the engine as initial config (`pulumi preview --policy-pack-config` still
 * overrides it); the offline evaluator applies it the same way.
 */
export function policyPackConfigFor(stack: PolicyStack): PolicyPackConfig {
  return Object.fromEntries(
    ALL_POLICIES.map((p) => [p.name, { enforcementLevel: levelOf(p, stack), ...(p.platform.config?.perStack[stack] ?? {}) }]),
  );
}

/** The plain CrossGuard policy (metadata stripped) at the stack's level, as the pack serves it. */
export function toCrossGuard(policy: PlatformPolicy, stack: PolicyStack): ResourceValidationPolicy | StackValidationPolicy {
  const { platform: _platform, ...plain } = policy;
  return { ...plain, enforcementLevel: levelOf(policy, stack) };
}
