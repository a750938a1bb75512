/**
 * What KEDA's pods must accept, and from whom. KEDA runs three Deployments (chart labels
 * `app: <name>`); a default-deny policy isolates the namespace and one policy per component
 * admits exactly these ports. Egress stays open: scalers reach PostgreSQL, the API server and STS.
 *
 * Kubelet probes (operator and webhooks on 8081, the metrics server on 6443) need no rule:
 * the VPC CNI network policy agent always admits traffic from the pod's own node.
 */
/** The namespace KEDA runs in. */
export const KEDA_NAMESPACE = 'keda';

/** Where each KEDA component serves Prometheus metrics (the chart's `prometheus.*.port` default). */
export const KEDA_METRICS_PORT = 8080;

export const KEDA_COMPONENTS = {
  operator: 'keda-operator',
  metricsApiServer: 'keda-operator-metrics-apiserver',
  admissionWebhooks: 'keda-admission-webhooks',
} as const;
export type KedaComponent = keyof typeof KEDA_COMPONENTS;

/** Where a connection comes from: another KEDA component, the Kubernetes API server, or Prometheus. */
export type KedaSource = { component: KedaComponent } | 'api-server' | 'prometheus';

export interface KedaIngressRule {
  component: KedaComponent;
  port: number;
  from: KedaSource;
  reason: string;
}

export const KEDA_INGRESS: readonly KedaIngressRule[] = [
  {
    component: 'operator',
    port: 9666,
    from: { component: 'metricsApiServer' },
    reason: 'gRPC metrics service: the metrics API server asks the operator for every scaler metric an HPA reads',
  },
  { component: 'operator', port: KEDA_METRICS_PORT, from: 'prometheus', reason: 'Prometheus scrapes the operator metrics (scaler errors, loop latency)' },
  {
    component: 'metricsApiServer',
    port: 6443,
    from: 'api-server',
    reason: 'the Kubernetes API server proxies external.metrics.k8s.io to it (the APIService the HPA controller reads)',
  },
  { component: 'metricsApiServer', port: KEDA_METRICS_PORT, from: 'prometheus', reason: 'Prometheus scrapes the metrics API server metrics' },
  {
    component: 'admissionWebhooks',
    port: 9443,
    from: 'api-server',
    reason: 'the Kubernetes API server calls the validating webhook for ScaledObjects, ScaledJobs and TriggerAuthentications',
  },
  { component: 'admissionWebhooks', port: KEDA_METRICS_PORT, from: 'prometheus', reason: 'Prometheus scrapes the webhook metrics' },
];

export interface KedaPolicyScope {
  /** Namespace Prometheus runs in. */
  monitoringNamespace: string;
  /**
   * Where API-server calls come from: the control plane reaches pods through network
   * interfaces EKS places in the VPC, so the VPC CIDR (not any pod selector) names them.
   */
  vpcCidrBlock: string;
}

interface NetworkPolicyPeer {
  podSelector?: { matchLabels: Record<string, string> };
  namespaceSelector?: { matchLabels: Record<string, string> };
  ipBlock?: { cidr: string };
}

/** The `spec` of each component's NetworkPolicy, keyed by component. Pure. */
export function kedaNetworkPolicySpecs(scope: KedaPolicyScope): Record<KedaComponent, { podSelector: { matchLabels: Record<string, string> }; policyTypes: ['Ingress']; ingress: { from: NetworkPolicyPeer[]; ports: { protocol: 'TCP'; port: number }[] }[] }> {
  const peer = (from: KedaSource): NetworkPolicyPeer => {
    if (from === 'api-server') return { ipBlock: { cidr: scope.vpcCidrBlock } };
    if (from === 'prometheus') return { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': scope.monitoringNamespace } } };
    return { podSelector: { matchLabels: { app: KEDA_COMPONENTS[from.component] } } };
  };
  const specs = {} as ReturnType<typeof kedaNetworkPolicySpecs>;
  for (const component of Object.keys(KEDA_COMPONENTS) as KedaComponent[]) {
    specs[component] = {
      podSelector: { matchLabels: { app: KEDA_COMPONENTS[component] } },
      policyTypes: ['Ingress'],
      ingress: KEDA_INGRESS.filter((r) => r.component === component).map((r) => ({ from: [peer(r.from)], ports: [{ protocol: 'TCP', port: r.port }] })),
    };
  }
  return specs;
}
