/**
 * Evaluates the policy pack in-process over a captured resource graph, the way the Pulumi
 * analyzer would under `pulumi preview --policy-pack policies`, without starting the pack's
 * gRPC server (which never exits; see ../shared/PULUMI-OFFLINE.md).
 *
 * Faithful where it matters: resource policies get `{type, props, urn, name, opts, provider,
 * stackTags, getConfig, isType, asType, notApplicable}`; a policy whose validation carries
 * `__pulumiType` is skipped for other types before it is called; `notApplicable` throws a
 * marker the runner catches; config is reconciled as the engine does (schema defaults, then
 * the pack's initial config for the stack, then overrides, `all` first); stack policies get
 * PolicyResource objects with `parent`, `dependencies` and `propertyDependencies` resolved
 * to objects. Any other exception from a rule is an error, as it is for the CLI.
 */
import type {
  EnforcementLevel,
  PolicyPackConfig,
  PolicyProviderResource,
  PolicyResource,
  PolicyResourceOptions,
  ResourceValidationArgs,
  StackValidationArgs,
} from '@pulumi/policy';
import { ALL_POLICIES, isStackPolicy, policyPackConfigFor, type PlatformPolicy, type PolicyStack } from '../../policies/catalog';
import { chartLabel } from '../../policies/kubernetes/helm';
import type { CapturedResource } from './types';

/**
 * A captured resource, plus what a capture may record beyond `CapturedResource`: the
 * provider reference (`urn::id`, as the engine passes it) and per-input dependencies.
 */
export type EvaluableResource = CapturedResource & {
  provider?: string;
  propertyDependencies?: Record<string, string[]>;
};

export interface EvaluationInput {
  stack: PolicyStack;
  project?: string;
  resources: readonly EvaluableResource[];
}

export interface Violation {
  policy: string;
  level: EnforcementLevel;
  urn?: string;
  message: string;
}

export interface PolicyResult {
  policy: string;
  kind: 'resource' | 'stack';
  level: EnforcementLevel;
  concern: string;
  /** Resources the policy applied to (for a stack policy: resources of the types it reads). */
  checked: number;
  violations: Violation[];
}

export interface EvaluationReport {
  stack: PolicyStack;
  project?: string;
  resourceCount: number;
  results: PolicyResult[];
  mandatory: number;
  advisory: number;
  /** Helm v3 Releases: CrossGuard sees the release, never the objects it renders. */
  opaqueReleases: { urn: string; chart: string }[];
}

export interface EvaluateOptions {
  /** Defaults to every policy of the pack. */
  policies?: readonly PlatformPolicy[];
  /** Like `--policy-pack-config`: applied over the pack's config for the stack. */
  config?: PolicyPackConfig;
  stackTags?: ReadonlyMap<string, string>;
}

class NotApplicable extends Error {
  constructor(readonly reason: string | undefined) {
    super(reason ?? 'not applicable');
  }
}

const throwNotApplicable = (reason?: string): never => {
  throw new NotApplicable(reason);
};

function pulumiTypeOf(fn: unknown): string | undefined {
  const t = (fn as { __pulumiType?: unknown } | undefined)?.__pulumiType;
  return typeof t === 'string' && t.length > 0 ? t : undefined;
}

/** `isType`/`asType` as the analyzer implements them: by `__pulumiType`, else `isInstance`. */
function isTypeOf(type: string, cls: unknown): boolean {
  const t = pulumiTypeOf(cls);
  if (t) return t === type;
  const isInstance = (cls as { isInstance?: (o: unknown) => boolean }).isInstance;
  return typeof isInstance === 'function' && isInstance({ __pulumiType: type }) === true;
}

const OPTS = (parent: string | undefined): PolicyResourceOptions => ({
  protect: false,
  ignoreChanges: [],
  aliases: [],
  customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
  additionalSecretOutputs: [],
  ...(parent ? { parent } : {}),
});

interface Reconciled {
  level: EnforcementLevel;
  props: Record<string, unknown>;
}

/** The engine's ReconcilePolicyPackConfig: schema defaults < initial config < given config. */
export function reconcileConfig(policies: readonly PlatformPolicy[], stack: PolicyStack, given: PolicyPackConfig = {}): Map<string, Reconciled> {
  const initial = policyPackConfigFor(stack);
  const out = new Map<string, Reconciled>();
  const all = given.all;
  for (const p of policies) {
    const defaults = Object.fromEntries(
      Object.entries(p.configSchema?.properties ?? {}).flatMap(([k, s]) => (typeof s === 'object' && 'default' in s ? [[k, s.default]] : [])),
    );
    let level: EnforcementLevel = p.enforcementLevel ?? 'advisory';
    const props: Record<string, unknown> = { ...defaults };
    for (const layer of [initial[p.name], typeof all === 'string' ? all : all?.enforcementLevel ? { enforcementLevel: all.enforcementLevel } : undefined, given[p.name]]) {
      if (layer === undefined) continue;
      if (typeof layer === 'string') {
        level = layer;
        continue;
      }
      const { enforcementLevel, ...rest } = layer;
      if (enforcementLevel) level = enforcementLevel;
      Object.assign(props, rest);
    }
    out.set(p.name, { level: level === 'remediate' ? 'mandatory' : level, props });
  }
  return out;
}

function providerOf(r: EvaluableResource, byUrn: ReadonlyMap<string, EvaluableResource>): PolicyProviderResource | undefined {
  if (!r.provider) return undefined;
  const urn = r.provider.split('::').slice(0, -1).join('::') || r.provider;
  const p = byUrn.get(urn) ?? byUrn.get(r.provider);
  if (!p) return undefined;
  return { type: p.type, name: p.name, urn: p.urn, props: structuredClone(p.inputs) };
}

export async function evaluate(input: EvaluationInput, options: EvaluateOptions = {}): Promise<EvaluationReport> {
  const policies = options.policies ?? ALL_POLICIES;
  const config = reconcileConfig(policies, input.stack, options.config);
  const stackTags = options.stackTags ?? new Map<string, string>();
  const byUrn = new Map(input.resources.map((r) => [r.urn, r]));
  const results: PolicyResult[] = [];

  for (const policy of policies) {
    const cfg = config.get(policy.name) as Reconciled;
    const result: PolicyResult = {
      policy: policy.name,
      kind: isStackPolicy(policy) ? 'stack' : 'resource',
      level: cfg.level,
      concern: policy.platform.concern,
      checked: 0,
      violations: [],
    };
    results.push(result);
    if (cfg.level === 'disabled') continue;
    const getConfig = <T extends object>() => structuredClone(cfg.props) as T;

    if (isStackPolicy(policy)) {
      const resources = toPolicyResources(input.resources, byUrn);
      const args: StackValidationArgs = { resources, stackTags, getConfig, notApplicable: throwNotApplicable };
      const typed = pulumiTypeOf(policy.validateStack);
      if (typed && !resources.some((r) => r.type === typed)) continue;
      try {
        await Promise.resolve(
          policy.validateStack(args, (message, urn) => result.violations.push({ policy: policy.name, level: cfg.level, message, ...(urn ? { urn } : {}) })),
        );
        result.checked = resources.filter((r) => policy.platform.resourceTypes.includes(r.type)).length;
      } catch (e) {
        if (!(e instanceof NotApplicable)) throw new Error(`Error validating stack with policy '${policy.name}': ${(e as Error).message}`, { cause: e });
      }
      continue;
    }

    const validations = Array.isArray(policy.validateResource) ? policy.validateResource : [policy.validateResource];
    for (const r of input.resources) {
      let applied = false;
      for (const validation of validations) {
        const typed = pulumiTypeOf(validation);
        if (typed && typed !== r.type) continue;
        const props = structuredClone(r.inputs);
        const provider = providerOf(r, byUrn);
        const args: ResourceValidationArgs = {
          type: r.type,
          props,
          urn: r.urn,
          name: r.name,
          opts: OPTS(r.parent),
          ...(provider ? { provider } : {}),
          stackTags,
          isType: (cls) => isTypeOf(r.type, cls),
          asType: ((cls: unknown) => (isTypeOf(r.type, cls) ? props : undefined)) as ResourceValidationArgs['asType'],
          getConfig,
          notApplicable: throwNotApplicable,
        };
        try {
          await Promise.resolve(validation(args, (message) => result.violations.push({ policy: policy.name, level: cfg.level, urn: r.urn, message })));
          applied = true;
        } catch (e) {
          if (!(e instanceof NotApplicable)) throw new Error(`Error validating ${r.urn} with policy '${policy.name}': ${(e as Error).message}`, { cause: e });
        }
      }
      if (applied) result.checked += 1;
    }
  }

  const violations = results.flatMap((r) => r.violations);
  return {
    stack: input.stack,
    ...(input.project ? { project: input.project } : {}),
    resourceCount: input.resources.length,
    results,
    mandatory: violations.filter((v) => v.level === 'mandatory').length,
    advisory: violations.filter((v) => v.level === 'advisory').length,
    opaqueReleases: input.resources
      .filter((r) => r.type === 'kubernetes:helm.sh/v3:Release')
      .map((r) => ({ urn: r.urn, chart: chartLabel(r.inputs) })),
  };
}

/** Stack-policy view of the graph, with references resolved to objects as the analyzer does. */
function toPolicyResources(resources: readonly EvaluableResource[], byUrn: ReadonlyMap<string, EvaluableResource>): PolicyResource[] {
  const out = new Map<string, PolicyResource>();
  for (const r of resources) {
    const props = structuredClone(r.inputs);
    const provider = providerOf(r, byUrn);
    out.set(r.urn, {
      type: r.type,
      props,
      urn: r.urn,
      name: r.name,
      opts: OPTS(r.parent),
      ...(provider ? { provider } : {}),
      dependencies: [],
      propertyDependencies: {},
      isType: (cls) => isTypeOf(r.type, cls),
      asType: ((cls: unknown) => (isTypeOf(r.type, cls) ? props : undefined)) as PolicyResource['asType'],
    });
  }
  const resolve = (urns: readonly string[]) => urns.map((u) => out.get(u)).filter((x): x is PolicyResource => x !== undefined);
  for (const r of resources) {
    const pr = out.get(r.urn) as PolicyResource;
    if (r.parent) {
      const parent = out.get(r.parent);
      if (parent) pr.parent = parent;
    }
    pr.dependencies = resolve(r.dependencies);
    for (const [k, urns] of Object.entries(r.propertyDependencies ?? {})) pr.propertyDependencies[k] = resolve(urns);
  }
  return [...out.values()];
}
