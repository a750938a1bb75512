import type { PolicyResource } from '@pulumi/policy';
import { type PlatformPolicy, at, describe, known, num, stackPolicy, str } from '../lib/policy';
import { DEPLOYMENT, HPA, NAMESPACE, NETWORK_POLICY, PDB, SCALED_OBJECT, STATEFUL_SET, labelsOf, namespaceName, namespaceOf } from '../lib/kube';

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

/** The autoscalers (HPAs and KEDA ScaledObjects) whose scaleTargetRef names the workload, in its namespace. */
function autoscalersOf(w: PolicyResource, autoscalers: readonly PolicyResource[]): PolicyResource[] {
  const name = known(() => str(at(w.props, 'metadata', 'name')));
  const kind = w.type.split(':').pop();
  return autoscalers.filter((a) => {
    const target = known(() => at(a.props, 'spec', 'scaleTargetRef'));
    const targetName = known(() => str(at(target, 'name')));
    // During a preview the target's name may be unknown; the input that carries it still names the workload.
    if (targetName === undefined || name === undefined) return (a.propertyDependencies.spec ?? []).some((d) => d.urn === w.urn);
    return targetName === name && (known(() => str(at(target, 'kind'))) ?? 'Deployment') === kind && sameNamespace(a, w);
  });
}

/**
 * The most replicas the workload may run: its own `replicas`, or the bounds of its
 * autoscalers (an HPA's minReplicas/maxReplicas, a ScaledObject's minReplicaCount/
 * maxReplicaCount, whose unset maximum is KEDA's default of 100).
 */
function replicasOf(w: PolicyResource, autoscalers: readonly PolicyResource[]): number {
  const own = known(() => num(at(w.props, 'spec', 'replicas'))) ?? 1;
  const bounds = autoscalersOf(w, autoscalers).flatMap((a) =>
    a.type === SCALED_OBJECT
      ? [known(() => num(at(a.props, 'spec', 'minReplicaCount'))) ?? 0, known(() => num(at(a.props, 'spec', 'maxReplicaCount'))) ?? 100]
      : [known(() => num(at(a.props, 'spec', 'minReplicas'))) ?? 1, known(() => num(at(a.props, 'spec', 'maxReplicas'))) ?? 1],
  );
  return Math.max(own, ...bounds);
}

function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

export const kubernetesStackPolicies: PlatformPolicy[] = [
  stackPolicy({
    name: 'kubernetes-pdb-per-multi-replica-workload',
    description:
      'Every Deployment or StatefulSet that may run more than one replica (its replicas, or the bounds of its HorizontalPodAutoscaler or KEDA ScaledObject) has a PodDisruptionBudget in its namespace whose selector matches its pod labels, so a node drain or upgrade never takes all replicas at once.',
    control: { framework: 'Kubernetes best practices', id: 'pdb', url: 'https://kubernetes.io/docs/tasks/run-application/configure-pdb/' },
    concern: 'resilience',
    severity: 'medium',
    remediation: 'Add a policy/v1 PodDisruptionBudget with maxUnavailable: 1 (or minAvailable) and selector.matchLabels equal to the pod template labels.',
    types: [DEPLOYMENT, STATEFUL_SET, PDB, HPA, SCALED_OBJECT],
    validate: (resources, _args, report) => {
      const pdbs = resources.filter((r) => r.type === PDB);
      const autoscalers = resources.filter((r) => r.type === HPA || r.type === SCALED_OBJECT);
      for (const w of resources.filter((r) => r.type === DEPLOYMENT || r.type === STATEFUL_SET)) {
        const replicas = replicasOf(w, autoscalers);
        if (replicas <= 1) continue;
        const labels = labelsOf(known(() => at(w.props, 'spec', 'template', 'metadata', 'labels')));
        const covered = pdbs.some(
          (p) => sameNamespace(p, w) && selects(labelsOf(known(() => at(p.props, 'spec', 'selector', 'matchLabels'))), labels),
        );
        if (!covered) report(`${describe(w)} runs up to ${replicas} replicas but no PodDisruptionBudget selects its pods.`, w.urn);
      }
    },
  }),
  stackPolicy({
    name: 'kubernetes-one-autoscaler-per-workload',
    description:
      'No Deployment or StatefulSet is the target of two autoscalers. A KEDA ScaledObject creates and owns a HorizontalPodAutoscaler for its target, so a second HPA beside it (or two HPAs) would fight over the replica count, each undoing the other every sync.',
    control: { framework: 'KEDA', id: 'scaledobject-hpa-ownership', url: 'https://keda.sh/docs/latest/concepts/scaling-deployments/' },
    concern: 'resilience',
    severity: 'medium',
    remediation: 'Keep one autoscaler per workload: the ScaledObject for queue-driven workers (put CPU triggers into it if needed), the HPA for the api.',
    types: [DEPLOYMENT, STATEFUL_SET, HPA, SCALED_OBJECT],
    validate: (resources, _args, report) => {
      const autoscalers = resources.filter((r) => r.type === HPA || r.type === SCALED_OBJECT);
      for (const w of resources.filter((r) => r.type === DEPLOYMENT || r.type === STATEFUL_SET)) {
        const targeting = autoscalersOf(w, autoscalers);
        if (targeting.length > 1) report(`${describe(w)} is scaled by ${targeting.map((a) => describe(a)).join(' and ')}; one autoscaler per workload.`, w.urn);
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
