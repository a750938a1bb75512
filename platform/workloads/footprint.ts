import type { NodePool } from '../cluster/placement';
import type { PlacedFootprint } from '../observability/capacity';
import type { ReplicaBounds } from './autoscaling';
import type { ResourceSpec } from './pod';

/** What the migrations Job's pod requests (memory is also its limit). */
export const MIGRATIONS_RESOURCES: ResourceSpec = { cpu: '100m', memory: '256Mi' };

/** `250m` → 250, `1` → 1000, `0.5` → 500: the CPU quantities the stack config accepts. */
export function cpuMillis(quantity: string): number {
  const value = quantity.endsWith('m') ? Number(quantity.slice(0, -1)) : Number(quantity) * 1000;
  if (!Number.isFinite(value)) throw new Error(`${quantity} is not a CPU quantity such as 250m or 1`);
  return Math.ceil(value);
}

/** `512Mi` → 512, `1Gi` → 1024: the memory quantities the stack config accepts. */
export function memoryMiB(quantity: string): number {
  const m = /^(\d+)(Mi|Gi)$/.exec(quantity);
  if (!m) throw new Error(`${quantity} is not a memory quantity in Mi or Gi such as 512Mi`);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
}

export interface WorkloadSizes {
  api: { replicas: ReplicaBounds; resources: ResourceSpec };
  worker: { replicas: ReplicaBounds; resources: ResourceSpec };
}

/**
 * The pods the workloads keep scheduled, by pool, from the same settings the Deployments
 * are built from: each Deployment at its autoscaler's minimum plus the one surge pod a
 * rollout adds (maxSurge 1, maxUnavailable 0), and the migrations Job's pod, which runs on
 * the system pool at every `up`. Pure.
 */
export function workloadsFootprint(sizes: WorkloadSizes, pools: { api: NodePool; worker: NodePool; migrations: NodePool } = { api: 'system', worker: 'jobs', migrations: 'system' }): PlacedFootprint[] {
  const of = (component: string, pool: NodePool, pods: number, r: ResourceSpec): PlacedFootprint => ({ component, pool, pods, cpuMillis: cpuMillis(r.cpu), memoryMiB: memoryMiB(r.memory) });
  return [
    of('api', pools.api, sizes.api.replicas.min + 1, sizes.api.resources),
    of('worker', pools.worker, sizes.worker.replicas.min + 1, sizes.worker.resources),
    of('migrations', pools.migrations, 1, MIGRATIONS_RESOURCES),
  ];
}
