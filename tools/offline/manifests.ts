/**
 * The Kubernetes objects a captured stack creates directly, as the API server would
 * receive them: `apiVersion` and `kind` from the resource type, the inputs as the body,
 * auto-named objects given the name the provider would generate (see the mocks), and
 * every secret value replaced by "[secret]". Helm releases are not expanded: their
 * objects come from the charts, which only Helm renders (they are listed apart).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { splitPath, yamlParser } from './capture';
import { kubernetesAutoName } from './mocks';
import type { CapturedResource, CapturedStack } from './types';

export interface KubernetesObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
}

export interface RenderedManifest {
  /** The URN of the Pulumi resource the object comes from. */
  urn: string;
  object: KubernetesObject;
}

const HELM = /^kubernetes:helm\.sh\//;
const KUBERNETES_TYPE = /^kubernetes:(?:([a-z0-9.-]+)\/)?(v[0-9a-z]+):([A-Za-z]+)$/;

/** `kubernetes:apps/v1:Deployment` → `{ apiVersion: 'apps/v1', kind: 'Deployment' }`; core types have no group. */
export function kubernetesTypeOf(type: string): { apiVersion: string; kind: string } | undefined {
  if (HELM.test(type)) return undefined;
  const m = KUBERNETES_TYPE.exec(type.replace(/^kubernetes:core\//, 'kubernetes:'));
  if (!m) return undefined;
  const [, group, version, kind] = m;
  return { apiVersion: group ? `${group}/${version}` : String(version), kind: String(kind) };
}

/** Every string under a value replaced by "[secret]", keeping its shape (a Secret's `stringData` stays a map). */
function mask(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(mask);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mask(v)]));
  return '[secret]';
}

/** A copy of the inputs with each secret path masked. */
export function maskSecrets(inputs: Record<string, unknown>, secretPaths: readonly string[]): Record<string, unknown> {
  const copy = structuredClone(inputs);
  for (const p of secretPaths) {
    const segments = splitPath(p);
    const last = segments.pop();
    let node: unknown = copy;
    for (const seg of segments) node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[seg] : undefined;
    if (last !== undefined && node !== null && typeof node === 'object' && last in node) (node as Record<string, unknown>)[last] = mask((node as Record<string, unknown>)[last]);
  }
  return copy;
}

/** The object of one captured resource, or undefined for anything that is not a plain Kubernetes object. */
export function renderObject(r: CapturedResource): KubernetesObject | undefined {
  const gvk = kubernetesTypeOf(r.type);
  if (!gvk || !r.custom) return undefined;
  const { apiVersion: _a, kind: _k, metadata, ...rest } = maskSecrets(r.inputs, r.secretPaths);
  const meta = { ...((metadata ?? {}) as Record<string, unknown>) };
  if (typeof meta.name !== 'string') meta.name = kubernetesAutoName(r.type, r.name);
  return { apiVersion: gvk.apiVersion, kind: gvk.kind, metadata: meta as KubernetesObject['metadata'], ...rest };
}

/** Every Kubernetes object of the stack, cluster-scoped first, then by namespace, kind and name. */
export function renderManifests(captured: CapturedStack): RenderedManifest[] {
  const out: RenderedManifest[] = [];
  for (const r of captured.resources) {
    const object = renderObject(r);
    if (object) out.push({ urn: r.urn, object });
  }
  const key = (m: RenderedManifest) => `${m.object.metadata.namespace ?? ''}\0${m.object.kind}\0${m.object.metadata.name}`;
  return out.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** The Helm releases of the stack, whose objects are not rendered here. */
export function helmReleases(captured: CapturedStack): { name: string; chart: string; version: string; namespace: string }[] {
  return captured.resources
    .filter((r) => r.type === 'kubernetes:helm.sh/v3:Release')
    .map((r) => ({ name: String(r.inputs.name ?? r.name), chart: String(r.inputs.chart), version: String(r.inputs.version), namespace: String(r.inputs.namespace ?? 'default') }));
}

/** `<dir>/<namespace or _cluster>/<kind>-<name>.yaml`, one document per object. */
export function manifestPath(dir: string, object: KubernetesObject): string {
  return path.join(dir, object.metadata.namespace ?? '_cluster', `${object.kind.toLowerCase()}-${object.metadata.name}.yaml`);
}

export function toYaml(object: KubernetesObject): string {
  return yamlParser().dump(object, { lineWidth: 160, noRefs: true });
}

/** Writes the manifests under `dir` (created when missing; nothing else in it is touched), returns the files written. */
export function writeManifests(dir: string, manifests: readonly RenderedManifest[]): string[] {
  const files: string[] = [];
  for (const { object } of manifests) {
    const file = manifestPath(dir, object);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, toYaml(object));
    files.push(file);
  }
  return files;
}
