import { ALL_POLICIES, type PolicyStack } from '../../policies/catalog';
import { type EvaluableResource, type Violation, evaluate } from '../../tools/offline/evaluate';

export interface CraftOptions {
  parent?: EvaluableResource;
  dependsOn?: EvaluableResource[];
  /** Dependencies through one input, e.g. `{ bucket: [bucket] }`; also added to dependencies. */
  via?: Record<string, EvaluableResource[]>;
  provider?: EvaluableResource;
}

/** A resource as the capture records it, with a URN the engine would assign. */
export function craft(type: string, name: string, inputs: Record<string, unknown> = {}, opts: CraftOptions = {}): EvaluableResource {
  const via = Object.fromEntries(Object.entries(opts.via ?? {}).map(([k, rs]) => [k, rs.map((x) => x.urn)]));
  const dependencies = [...new Set([...(opts.dependsOn ?? []).map((d) => d.urn), ...Object.values(via).flat()])];
  return {
    urn: `urn:pulumi:test::platform-kit::${opts.parent ? `${opts.parent.type}$` : ''}${type}::${name}`,
    type,
    name,
    ...(opts.parent ? { parent: opts.parent.urn } : {}),
    dependencies,
    custom: !type.startsWith('eks:index:Cluster') && !type.startsWith('awsx:'),
    inputs,
    secretPaths: [],
    ...(Object.keys(via).length ? { propertyDependencies: via } : {}),
    ...(opts.provider ? { provider: `${opts.provider.urn}::provider-id` } : {}),
  };
}

export function policyNamed(name: string) {
  const p = ALL_POLICIES.find((x) => x.name === name);
  if (!p) throw new Error(`no policy named ${name}`);
  return p;
}

/** Runs one policy over the given resources and returns its violations. */
export async function violationsOf(policy: string, resources: EvaluableResource[], stack: PolicyStack = 'prod'): Promise<Violation[]> {
  const report = await evaluate({ stack, resources }, { policies: [policyNamed(policy)] });
  return report.results.flatMap((r) => r.violations);
}
