/**
 * The CrossGuard entry point, run by the Pulumi CLI:
 *   pulumi preview -s prod --policy-pack policies
 *
 * Constructing a PolicyPack starts the analyzer's gRPC server and never returns control,
 * so this is the only file that does it and nothing in tests or tools imports it: the
 * offline evaluator (tools/offline/evaluate.ts) takes the rules from ./catalog instead.
 */
import { PolicyPack } from '@pulumi/policy';
import { ALL_POLICIES, PACK_NAME, policyPackConfigFor, stackFromEnv, toCrossGuard } from './catalog';

const stack = stackFromEnv(process.env);

new PolicyPack(
  PACK_NAME,
  {
    description: `Platform Kit guardrails for AWS and Kubernetes, enforced for stack '${stack}'.`,
    enforcementLevel: 'mandatory',
    policies: ALL_POLICIES.map((p) => toCrossGuard(p, stack)),
  },
  policyPackConfigFor(stack),
);
