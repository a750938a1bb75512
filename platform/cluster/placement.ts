/**
 * Node pools and how a pod lands in one. The same constants hold in every stack: a stack
 * whose one node group serves both pools (dev) carries both labels and no taint, so the
 * selectors and tolerations below schedule the same way there as on prod's split pools.
 *
 * - `system`: cluster add-ons (LB controller, KEDA, metrics-server, autoscaler, coredns),
 *   the monitoring stack and the api. The default pool: not tainted, so anything without a
 *   placement lands here rather than nowhere.
 * - `jobs`: the job workers only. A group that serves only `jobs` is tainted, so nothing
 *   else takes the capacity the autoscaler adds for queue depth.
 */
export const NODE_POOLS = ['system', 'jobs'] as const;
export type NodePool = (typeof NODE_POOLS)[number];

/** `node.platform-kit.io/<pool>: "true"` on every node of a group serving the pool. */
export function poolLabel(pool: NodePool): string {
  return `node.platform-kit.io/${pool}`;
}

export interface Toleration {
  key: string;
  operator: 'Equal' | 'Exists';
  value?: string;
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

/** What a pod spec needs to run in a pool: merge both into the pod template's spec. */
export interface Placement {
  nodeSelector: Record<string, string>;
  tolerations: Toleration[];
}

/** The taint of a group that serves only the jobs pool, as the EKS API spells it. */
export const JOBS_TAINT = { key: poolLabel('jobs'), value: 'true', effect: 'NO_SCHEDULE' } as const;

/**
 * Pod placement per pool. Issue-level contract: the worker uses `PLACEMENT.jobs`, the api
 * and the monitoring stack `PLACEMENT.system`.
 */
export const PLACEMENT: Readonly<Record<NodePool, Placement>> = {
  system: { nodeSelector: { [poolLabel('system')]: 'true' }, tolerations: [] },
  jobs: {
    nodeSelector: { [poolLabel('jobs')]: 'true' },
    tolerations: [{ key: JOBS_TAINT.key, operator: 'Equal', value: JOBS_TAINT.value, effect: 'NoSchedule' }],
  },
};

/** For DaemonSets that belong on every node (log shippers, node exporters): tolerate every pool's taint. */
export const EVERY_NODE_TOLERATIONS: readonly Toleration[] = [{ key: JOBS_TAINT.key, operator: 'Exists', effect: 'NoSchedule' }];

/** Labels of a node group serving `roles`. */
export function poolLabels(roles: readonly NodePool[]): Record<string, string> {
  return Object.fromEntries(roles.map((r) => [poolLabel(r), 'true']));
}

/** Taints of a node group serving `roles`: only a jobs-only group is exclusive. */
export function poolTaints(roles: readonly NodePool[]): (typeof JOBS_TAINT)[] {
  return roles.length === 1 && roles[0] === 'jobs' ? [JOBS_TAINT] : [];
}
