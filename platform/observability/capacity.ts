import type { NodePool } from '../cluster/placement';
import type { Footprint } from './sizing';

export type { Footprint } from './sizing';

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
 * and on the system pool as a whole (coredns, EBS CSI controller, load balancer
 * controller, metrics-server, KEDA's operator and the Cluster Autoscaler, two replicas
 * each, plus KEDA's metrics server and webhooks), with their memory requests from the
 * charts' and add-ons' defaults (128 MiB where a chart sets none).
 */
export const CLUSTER_ADDONS = {
  perNode: { pods: 3, memoryMiB: 40 },
  pool: { pods: 14, memoryMiB: 2 * 70 + 2 * 160 + 2 * 128 + 2 * 200 + 2 * 128 + 2 * 128 + 2 * 128 },
} as const;

/** Pods and the pool they are placed in. */
export interface PlacedFootprint extends Footprint {
  pool: NodePool;
}

/**
 * What may land on `pool`'s nodes: the footprints placed there, and those of another pool
 * that shares a node group with it (dev's one group serves both), since the scheduler may
 * put them on the same nodes. Pure.
 */
export function landingOn(pool: NodePool, nodeGroups: readonly { roles: readonly NodePool[] }[], placed: readonly PlacedFootprint[]): Footprint[] {
  const shares = (other: NodePool) => other === pool || nodeGroups.some((g) => g.roles.includes(pool) && g.roles.includes(other));
  return placed.filter((f) => shares(f.pool)).map(({ pool: _pool, ...footprint }) => footprint);
}

/** A node group's part of a pool: its instance types and the nodes it can shrink to. */
export interface PoolGroup {
  name: string;
  instanceTypes: string[];
  nodes: number;
}

export interface PoolCapacity {
  /** The pool, for messages (`system`). */
  name: string;
  groups: PoolGroup[];
}

/**
 * The node groups serving `pool` (by their `roles`), each at its minimum size: the Cluster
 * Autoscaler may shrink them that far, so the stack must fit there. Pure.
 */
export function poolAtMinimum(pool: NodePool, nodeGroups: readonly { name: string; roles: readonly NodePool[]; instanceTypes: string[]; minSize: number }[]): PoolCapacity {
  return { name: pool, groups: nodeGroups.filter((g) => g.roles.includes(pool)).map((g) => ({ name: g.name, instanceTypes: g.instanceTypes, nodes: g.minSize })) };
}

export interface CapacityReport {
  pool: string;
  /** Per group, the smallest of its instance types, which decides. */
  groups: { name: string; instanceType: string; nodes: number }[];
  nodes: number;
  allocatable: { pods: number; memoryMiB: number };
  requested: { pods: number; memoryMiB: number };
  fits: boolean;
}

function smallestType(group: PoolGroup): { type: string; capacity: InstanceCapacity } {
  const known = group.instanceTypes.map((t) => {
    const capacity = INSTANCE_CAPACITY[t];
    if (!capacity) throw new Error(`node group ${group.name}: instance type ${t} is not in INSTANCE_CAPACITY (platform/observability/capacity.ts); add its memory and max pods`);
    return { type: t, capacity };
  });
  return known.reduce((a, b) => (allocatableMemoryMiB(b.capacity) < allocatableMemoryMiB(a.capacity) || b.capacity.maxPods < a.capacity.maxPods ? b : a));
}

/** Sums the stack's requests (DaemonSet pods once per node) with the add-ons' and compares them with the pool. */
export function capacityReport(pool: PoolCapacity, footprint: readonly Footprint[]): CapacityReport {
  const groups = pool.groups.map((g) => ({ group: g, smallest: smallestType(g) }));
  const nodes = pool.groups.reduce((n, g) => n + g.nodes, 0);
  const perNode = (pods: number | 'per-node') => (pods === 'per-node' ? nodes : pods);
  const requested = {
    pods: footprint.reduce((n, f) => n + perNode(f.pods), 0) + CLUSTER_ADDONS.pool.pods + CLUSTER_ADDONS.perNode.pods * nodes,
    memoryMiB: footprint.reduce((n, f) => n + perNode(f.pods) * f.memoryMiB, 0) + CLUSTER_ADDONS.pool.memoryMiB + CLUSTER_ADDONS.perNode.memoryMiB * nodes,
  };
  const allocatable = {
    pods: groups.reduce((n, { group, smallest }) => n + smallest.capacity.maxPods * group.nodes, 0),
    memoryMiB: groups.reduce((n, { group, smallest }) => n + allocatableMemoryMiB(smallest.capacity) * group.nodes, 0),
  };
  return {
    pool: pool.name,
    groups: groups.map(({ group, smallest }) => ({ name: group.name, instanceType: smallest.type, nodes: group.nodes })),
    nodes,
    allocatable,
    requested,
    fits: requested.pods <= allocatable.pods && requested.memoryMiB <= allocatable.memoryMiB,
  };
}
