/**
 * What each part of the monitoring stack asks the scheduler for. The chart values are
 * built from these numbers and the capacity check sums them, so the two cannot disagree.
 */

export interface Requests {
  cpuMillis: number;
  memoryMiB: number;
}

export interface Footprint extends Requests {
  component: string;
  /** Pods on the system pool, or one per node for a DaemonSet. */
  pods: number | 'per-node';
}

/** Container requests of the parts whose size is not stack config. */
export const FIXED_REQUESTS = {
  operator: { cpuMillis: 100, memoryMiB: 128 },
  configReloader: { cpuMillis: 10, memoryMiB: 32 },
  alertmanager: { cpuMillis: 50, memoryMiB: 96 },
  grafana: { cpuMillis: 100, memoryMiB: 256 },
  grafanaSidecar: { cpuMillis: 20, memoryMiB: 64 },
  kubeStateMetrics: { cpuMillis: 50, memoryMiB: 128 },
  nodeExporter: { cpuMillis: 50, memoryMiB: 48 },
  alloy: { cpuMillis: 100, memoryMiB: 192 },
  alloyReloader: { cpuMillis: 10, memoryMiB: 16 },
} as const satisfies Record<string, Requests>;

export interface SizingInput {
  prometheus: { replicas: number; memoryMiB: number };
  alertmanager: { replicas: number };
  loki: { replicas: number; memoryMiB: number };
}

/** Prometheus' CPU request: a quarter core per 2 GiB of memory, at least 250m. */
export function prometheusRequests(memoryMiB: number): Requests {
  return { cpuMillis: Math.max(250, Math.round(memoryMiB / 8)), memoryMiB };
}

export function lokiRequests(memoryMiB: number): Requests {
  return { cpuMillis: Math.max(100, Math.round(memoryMiB / 8)), memoryMiB };
}

const plus = (...parts: Requests[]): Requests => ({
  cpuMillis: parts.reduce((n, p) => n + p.cpuMillis, 0),
  memoryMiB: parts.reduce((n, p) => n + p.memoryMiB, 0),
});

/** Every pod the stack schedules and what it requests (all containers of the pod summed). */
export function monitoringFootprint(input: SizingInput): Footprint[] {
  const r = FIXED_REQUESTS;
  return [
    { component: 'prometheus', pods: input.prometheus.replicas, ...plus(prometheusRequests(input.prometheus.memoryMiB), r.configReloader) },
    { component: 'alertmanager', pods: input.alertmanager.replicas, ...plus(r.alertmanager, r.configReloader) },
    { component: 'prometheus-operator', pods: 1, ...r.operator },
    { component: 'grafana', pods: 1, ...plus(r.grafana, r.grafanaSidecar, r.grafanaSidecar) },
    { component: 'kube-state-metrics', pods: 1, ...r.kubeStateMetrics },
    { component: 'loki', pods: input.loki.replicas, ...lokiRequests(input.loki.memoryMiB) },
    { component: 'node-exporter', pods: 'per-node', ...r.nodeExporter },
    { component: 'alloy', pods: 'per-node', ...plus(r.alloy, r.alloyReloader) },
  ];
}

/** Kubernetes quantities for a chart's `resources` (memory limited to its request: no overcommit). */
export function resources(req: Requests): { requests: { cpu: string; memory: string }; limits: { memory: string } } {
  return { requests: { cpu: `${req.cpuMillis}m`, memory: `${req.memoryMiB}Mi` }, limits: { memory: `${req.memoryMiB}Mi` } };
}
