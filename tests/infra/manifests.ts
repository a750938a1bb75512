/**
 * Offline schema validation of rendered Kubernetes objects: the built-in kinds against
 * `kubernetes-models`, KEDA's custom resources against `@kubernetes-models/keda` and the
 * Prometheus Operator's against `@kubernetes-models/prometheus-operator` (the CRD schemas
 * of the charts the stack installs).
 */
import type { KubernetesObject } from '../../tools/offline/manifests';

type Model = new (o: unknown) => { validate(): void };

export async function modelFor(apiVersion: string, kind: string): Promise<Model> {
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  const module =
    group === 'keda.sh' || group === 'eventing.keda.sh'
      ? `@kubernetes-models/keda/${apiVersion}`
      : group === 'monitoring.coreos.com'
        ? `@kubernetes-models/prometheus-operator/${apiVersion}`
        : `kubernetes-models/${apiVersion}`;
  const Model = ((await import(module)) as Record<string, Model | undefined>)[kind];
  if (!Model) throw new Error(`no schema model for ${apiVersion} ${kind} in ${module}`);
  return Model;
}

/** Throws with the JSON path of the first schema error. */
export async function validateObject(object: KubernetesObject): Promise<void> {
  const Model = await modelFor(object.apiVersion, object.kind);
  try {
    new Model(object).validate();
  } catch (error) {
    throw new Error(`${object.apiVersion} ${object.kind} ${object.metadata.namespace ?? ''}/${object.metadata.name}: ${(error as Error).message}`, { cause: error });
  }
}
