import { type Props, arr, at, obj, str } from './policy';

/** Workload kinds and where each keeps its pod spec. */
export const POD_SPEC_PATHS: Record<string, readonly string[]> = {
  'kubernetes:core/v1:Pod': ['spec'],
  'kubernetes:apps/v1:Deployment': ['spec', 'template', 'spec'],
  'kubernetes:apps/v1:StatefulSet': ['spec', 'template', 'spec'],
  'kubernetes:apps/v1:DaemonSet': ['spec', 'template', 'spec'],
  'kubernetes:apps/v1:ReplicaSet': ['spec', 'template', 'spec'],
  'kubernetes:batch/v1:Job': ['spec', 'template', 'spec'],
  'kubernetes:batch/v1:CronJob': ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
};
export const WORKLOAD_TYPES = Object.keys(POD_SPEC_PATHS);
/** Workloads that run until stopped, as opposed to Jobs that run to completion. */
export const LONG_RUNNING_TYPES = ['kubernetes:apps/v1:Deployment', 'kubernetes:apps/v1:StatefulSet', 'kubernetes:apps/v1:DaemonSet', 'kubernetes:core/v1:Pod'];

export const NAMESPACE = 'kubernetes:core/v1:Namespace';
export const SERVICE = 'kubernetes:core/v1:Service';
export const DEPLOYMENT = 'kubernetes:apps/v1:Deployment';
export const STATEFUL_SET = 'kubernetes:apps/v1:StatefulSet';
export const PDB = 'kubernetes:policy/v1:PodDisruptionBudget';
export const NETWORK_POLICY = 'kubernetes:networking.k8s.io/v1:NetworkPolicy';
export const INGRESS = 'kubernetes:networking.k8s.io/v1:Ingress';
export const HPA = 'kubernetes:autoscaling/v2:HorizontalPodAutoscaler';
/** KEDA's ScaledObject: it creates and owns a HorizontalPodAutoscaler for its target. */
export const SCALED_OBJECT = 'kubernetes:keda.sh/v1alpha1:ScaledObject';
export const HELM_RELEASE = 'kubernetes:helm.sh/v3:Release';
export const HELM_CHART_V3 = 'kubernetes:helm.sh/v3:Chart';
export const HELM_CHART_V4 = 'kubernetes:helm.sh/v4:Chart';

export function podSpecOf(type: string, props: Props): Props | undefined {
  const path = POD_SPEC_PATHS[type];
  return path ? obj(at(props, ...path)) : undefined;
}

export interface Container {
  kind: 'container' | 'initContainer' | 'ephemeralContainer';
  name: string;
  spec: Props;
}

export function containersOf(pod: Props): Container[] {
  const pick = (key: string, kind: Container['kind']) =>
    arr(pod[key])
      .map(obj)
      .filter((c): c is Props => c !== undefined)
      .map((c) => ({ kind, name: str(c.name) ?? '(unnamed)', spec: c }));
  return [...pick('initContainers', 'initContainer'), ...pick('containers', 'container'), ...pick('ephemeralContainers', 'ephemeralContainer')];
}

/** The namespace an object lands in; Kubernetes puts unqualified objects in `default`. */
export function namespaceOf(props: Props): string {
  return str(at(props, 'metadata', 'namespace')) ?? 'default';
}

/** A Namespace's name: `metadata.name`, or the logical name Pulumi auto-names it from. */
export function namespaceName(props: Props, logicalName: string): string {
  return str(at(props, 'metadata', 'name')) ?? logicalName;
}

export function labelsOf(v: unknown): Record<string, string> {
  const o = obj(v) ?? {};
  return Object.fromEntries(Object.entries(o).filter((e): e is [string, string] => typeof e[1] === 'string'));
}
