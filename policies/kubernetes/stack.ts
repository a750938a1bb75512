import type { PolicyResource } from '@pulumi/policy';
import { type PlatformPolicy, at, describe, known, num, stackPolicy, str } from '../lib/policy';
import { DEPLOYMENT, HPA, NAMESPACE, NETWORK_POLICY, PDB, STATEFUL_SET, labelsOf, namespaceName, namespaceOf } from '../lib/kube';

/**
 * Objects in a namespace the program creates usually take `metadata.namespace` from the
 * Namespace's output, which is unknown during preview; the dependency on the Namespace
 * resource says the same thing and is always known.
 */
function inNamespace(r: PolicyResource, ns: PolicyResource): boolean {
  if (r.dependencies.some((d) => d.urn === ns.urn) || (r.propertyDependencies.metadata ?? []).some((d) => d.urn === ns.urn)) return true;
  const name = known(() => namespaceName(ns.props, ns.name));
  return name !== undefined && known(() => namespaceOf(r.props)) === name;
}

function sameNamespace(a: PolicyResource, b: PolicyResource): boolean {
  const na = known(() => str(at(a.props, 'metadata', 'namespace')));
  const nb = known(() => str(at(b.props, 'metadata', 'namespace')));
  if (na !== undefined && nb !== undefined) return na === nb;
  const nsDeps = (r: PolicyResource) => new Set(r.dependencies.filter((d) => d.type === NAMESPACE).map((d) => d.urn));
  const da = nsDeps(a);
  const db = nsDeps(b);
  if (da.size > 0 || db.size > 0) return [...db].some((u) => da.has(u));
  return (na ?? 'default') === (nb ?? 'default');
}

/** Replicas the workload runs with in steady state: the HPA's minimum when one targets it. */
function replicasOf(w: PolicyResource, hpas: readonly PolicyResource[]): number {
  const name = known(() => str(at(w.props, 'metadata', 'name')));
  const hpa = hpas.find(
    (h) => h.dependencies.some((d) => d.urn === w.urn) || (name !== undefined && known(() => str(at(h.props, 'spec', 'scaleTargetRef', 'name'))) === name),
  );
  if (hpa) return known(() => num(at(hpa.props, 'spec', 'minReplicas'))) ?? 1;
  return known(() => num(at(w.props, 'spec', 'replicas'))) ?? 1;
}

function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

export const kubernetesStackPolicies: PlatformPolicy[] = [
  stackPolicy({
    name: 'kubernetes-pdb-per-multi-replica-workload',
    description:
      'Every Deployment or StatefulSet that runs more than one replica (its replicas, or its HorizontalPodAutoscaler\'s minReplicas) has a PodDisruptionBudget in its namespace whose selector matches its pod labels, so a node drain or upgrade never takes all replicas at once.',
    control: { framework: 'Kubernetes best practices', id: 'pdb', url: 'https://kubernetes.io/docs/tasks/run-application/configure-pdb/' },
    concern: 'resilience',
    severity: 'medium',
    remediation: 'Add a policy/v1 PodDisruptionBudget with maxUnavailable: 1 (or minAvailable) and selector.matchLabels equal to the pod template labels.',
    types: [DEPLOYMENT, STATEFUL_SET, PDB, HPA],
    validate: (resources, _args, report) => {
      const pdbs = resources.filter((r) => r.type === PDB);
      const hpas = resources.filter((r) => r.type === HPA);
      for (const w of resources.filter((r) => r.type === DEPLOYMENT || r.type === STATEFUL_SET)) {
        const replicas = replicasOf(w, hpas);
        if (replicas <= 1) continue;
        const labels = labelsOf(known(() => at(w.props, 'spec', 'template', 'metadata', 'labels')));
        const covered = pdbs.some(
          (p) => sameNamespace(p, w) && selects(labelsOf(known(() => at(p.props, 'spec', 'selector', 'matchLabels'))), labels),
        );
        if (!covered) report(`${describe(w)} runs ${replicas} replicas but no PodDisruptionBudget selects its pods.`, w.urn);
      }
    },
  }),
  stackPolicy({
    name: 'kubernetes-network-policy-per-namespace',
    description:
      'Every Namespace the program creates holds at least one NetworkPolicy (a default deny plus the flows the workloads need), so a compromised pod cannot reach everything in the cluster.',
    control: { framework: 'CIS Kubernetes Benchmark', id: '5.3.2', url: 'https://kubernetes.io/docs/concepts/services-networking/network-policies/' },
    concern: 'security',
    severity: 'high',
    remediation: 'Create a networking.k8s.io/v1 NetworkPolicy in the namespace: podSelector {} with policyTypes [Ingress, Egress] as the default deny, then allow DNS, the ingress controller and the database/cache.',
    types: [NAMESPACE, NETWORK_POLICY],
    validate: (resources, _args, report) => {
      const policies = resources.filter((r) => r.type === NETWORK_POLICY);
      for (const ns of resources.filter((r) => r.type === NAMESPACE)) {
        if (!policies.some((p) => inNamespace(p, ns))) {
          report(`${describe(ns)} has no NetworkPolicy: every pod in it accepts traffic from anywhere in the cluster.`, ns.urn);
        }
      }
    },
  }),
];
