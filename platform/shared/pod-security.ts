/**
 * Pod Security admission labels of a namespace held to `restricted` in all three modes:
 * `enforce` rejects a pod that breaks it, `audit` records it, `warn` tells whoever applied
 * it. Versions follow the cluster's, so an upgrade tightens with Kubernetes.
 */
export const RESTRICTED_NAMESPACE_LABELS: Readonly<Record<string, string>> = {
  'pod-security.kubernetes.io/enforce': 'restricted',
  'pod-security.kubernetes.io/enforce-version': 'latest',
  'pod-security.kubernetes.io/audit': 'restricted',
  'pod-security.kubernetes.io/audit-version': 'latest',
  'pod-security.kubernetes.io/warn': 'restricted',
  'pod-security.kubernetes.io/warn-version': 'latest',
};
