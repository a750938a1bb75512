import type { Footprint } from './sizing';

/**
 * What a node of an instance type offers pods on EKS (AL2023, VPC CNI without prefix
 * delegation): max pods from the ENI limits, memory after what the kubelet reserves.
 */
export interface InstanceCapacity {
  memoryMiB: number;
  vcpu: number;
  /** ENIs × (addresses per ENI − 1) + 2. */
  maxPods: number;
}

/** The instance types the stacks use. A type missing here fails the capacity check, by name. */
export const INSTANCE_CAPACITY: Record<string, InstanceCapacity> = {
  't3.large': { memoryMiB: 8_192, vcpu: 2, maxPods: 35 },
  't3a.large': { memoryMiB: 8_192, vcpu: 2, maxPods: 35 },
  't3.xlarge': { memoryMiB: 16_384, vcpu: 4, maxPods: 58 },
  'm6i.large': { memoryMiB: 8_192, vcpu: 2, maxPods: 29 },
  'm6a.large': { memoryMiB: 8_192, vcpu: 2, maxPods: 29 },
  'm6i.xlarge': { memoryMiB: 16_384, vcpu: 4, maxPods: 58 },
  'm6a.xlarge': { memoryMiB: 16_384, vcpu: 4, maxPods: 58 },
  'm7i.large': { memoryMiB: 8_192, vcpu: 2, maxPods: 29 },
};

/**
 * Allocatable memory of a node: the kernel and firmware keep about 5 % of the nominal
 * memory out of `capacity`; EKS's bootstrap reserves 255 MiB + 11 MiB per pod for the
 * kubelet and container runtime; eviction starts at 100 MiB free.
 */
export function allocatableMemoryMiB(c: InstanceCapacity): number {
  return Math.floor(c.memoryMiB * 0.95) - (255 + 11 * c.maxPods) - 100;
}

/**
 * Pods the cluster's own add-ons keep on every node (aws-node, kube-proxy, ebs-csi-node)
 * and on the pool as a whole (coredns, EBS CSI controller, load balancer controller,
 * metrics-server and KEDA, two replicas each, plus KEDA's metrics server and webhooks),
 * with their memory requests from the charts' and add-ons' defaults (128 MiB where a
 * chart sets none).
 */
export const CLUSTER_ADDONS = {
  perNode: { pods: 3, memoryMiB: 40 },
  pool: { pods: 12, memoryMiB: 2 * 70 + 2 * 160 + 2 * 128 + 2 * 200 + 2 * 128 + 2 * 128 },
} as const;

export interface NodePool {
  name: string;
  instanceTypes: string[];
  /** Nodes the pool can shrink to: the stack must fit there. */
  nodes: number;
}

export interface CapacityReport {
  pool: string;
  /** The smallest of the pool's instance types decides. */
  instanceType: string;
  nodes: number;
  allocatable: { pods: number; memoryMiB: number };
  requested: { pods: number; memoryMiB: number };
  fits: boolean;
}

/** Sums the stack's requests (DaemonSet pods once per node) with the add-ons' and compares them with the pool. */
export function capacityReport(pool: NodePool, footprint: readonly Footprint[]): CapacityReport {
  const known = pool.instanceTypes.map((t) => {
    const capacity = INSTANCE_CAPACITY[t];
    if (!capacity) throw new Error(`node group ${pool.name}: instance type ${t} is not in INSTANCE_CAPACITY (platform/observability/capacity.ts); add its memory and max pods`);
    return { type: t, capacity };
  });
  const smallest = known.reduce((a, b) => (allocatableMemoryMiB(b.capacity) < allocatableMemoryMiB(a.capacity) || b.capacity.maxPods < a.capacity.maxPods ? b : a));
  const perNode = (pods: number | 'per-node') => (pods === 'per-node' ? pool.nodes : pods);
  const requested = {
    pods: footprint.reduce((n, f) => n + perNode(f.pods), 0) + CLUSTER_ADDONS.pool.pods + CLUSTER_ADDONS.perNode.pods * pool.nodes,
    memoryMiB: footprint.reduce((n, f) => n + perNode(f.pods) * f.memoryMiB, 0) + CLUSTER_ADDONS.pool.memoryMiB + CLUSTER_ADDONS.perNode.memoryMiB * pool.nodes,
  };
  const allocatable = { pods: smallest.capacity.maxPods * pool.nodes, memoryMiB: allocatableMemoryMiB(smallest.capacity) * pool.nodes };
  return {
    pool: pool.name,
    instanceType: smallest.type,
    nodes: pool.nodes,
    allocatable,
    requested,
    fits: requested.pods <= allocatable.pods && requested.memoryMiB <= allocatable.memoryMiB,
  };
}
