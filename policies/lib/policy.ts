import type {
  EnforcementLevel,
  PolicyConfigSchema,
  PolicyResource,
  ReportViolation,
  ResourceValidation,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidation,
  StackValidationArgs,
  StackValidationPolicy,
} from '@pulumi/policy';
import { UnknownValueError } from '@pulumi/policy';

/**
 * The stacks this pack knows. Kept here rather than imported from the program's tools:
 * the pack depends on nothing of ours but `services/contract` (DESIGN §2).
 */
export const STACKS = ['dev', 'prod'] as const;
export type PolicyStack = (typeof STACKS)[number];

/**
 * What a rule protects. The concern decides the enforcement level per stack
 * (`levelFor`): everything is mandatory in prod; in dev, cost and security stay
 * mandatory and resilience (Multi-AZ, failover, retention…) is advisory, because dev
 * is deliberately single-AZ and disposable but must never be insecure or expensive.
 */
export type Concern = 'cost' | 'security' | 'resilience';

export interface Control {
  /** e.g. `AWS FSBP`, `Pod Security Standards`, `Platform Kit`. */
  framework: string;
  /** e.g. `RDS.2`, `restricted`. */
  id: string;
  url?: string;
}

export interface PolicyConfigSpec<C extends object> {
  /** JSON schema of the policy's config; its `default`s are the prod values. */
  schema: PolicyConfigSchema;
  /** Values per stack, applied by `policies/index.ts` as the pack's initial config. */
  perStack: Record<PolicyStack, C>;
}

interface Metadata {
  /** Why the rule exists, where it comes from. */
  control?: Control;
  concern: Concern;
  /** Resource types the rule reads (for the README and the offline table). */
  resourceTypes: readonly string[];
  /** Per-stack config, when the rule has knobs. */
  config?: PolicyConfigSpec<object>;
}

export type PlatformResourcePolicy = ResourceValidationPolicy & { validateResource: ResourceValidation; platform: Metadata };
export type PlatformStackPolicy = StackValidationPolicy & { platform: Metadata };
export type PlatformPolicy = PlatformResourcePolicy | PlatformStackPolicy;

export function isStackPolicy(p: PlatformPolicy): p is PlatformStackPolicy {
  return 'validateStack' in p && typeof p.validateStack === 'function';
}

export function levelFor(concern: Concern, stack: PolicyStack): EnforcementLevel {
  if (stack === 'prod') return 'mandatory';
  return concern === 'resilience' ? 'advisory' : 'mandatory';
}

/** Props as CrossGuard hands them over: plain JSON, possibly proxied. */
export type Props = Record<string, unknown>;

interface CommonSpec<C extends object> {
  name: string;
  description: string;
  control?: Control;
  concern: Concern;
  severity: 'low' | 'medium' | 'high' | 'critical';
  remediation: string;
  config?: PolicyConfigSpec<C>;
}

/**
 * The stack a CLI run is for. The Pulumi engine starts policy packs with PULUMI_STACK (and
 * PULUMI_NODEJS_STACK) set; a run without them (e.g. `pulumi policy publish`) gets prod,
 * the strict default. A fully qualified `org/project/stack` is reduced to the stack.
 */
export function stackFromEnv(env: NodeJS.ProcessEnv): PolicyStack {
  const raw = (env.PULUMI_STACK ?? env.PULUMI_NODEJS_STACK ?? '').split('/').pop() ?? '';
  return (STACKS as readonly string[]).includes(raw) ? (raw as PolicyStack) : 'prod';
}

/**
 * The engine sends each policy its reconciled config (schema defaults, then the pack's
 * initial config for the stack) before analysing; a server that was never configured
 * returns {}, so the same stack values back it up here.
 */
function configOf<C extends object>(spec: PolicyConfigSpec<C> | undefined, given: C): C {
  return { ...(spec?.perStack[stackFromEnv(process.env)] ?? ({} as C)), ...given };
}

function frameworkOf(control: Control | undefined) {
  return control ? { name: control.framework, version: '', reference: control.id, specification: control.url ?? '' } : undefined;
}

/**
 * A resource policy over one or more type tokens. Type tokens are strings, not
 * `@pulumi/aws` classes, so the pack installs with only `@pulumi/policy` (the provider
 * SDKs are hundreds of MB) and the same rule covers a remote component
 * (`eks:index:Cluster`) and the raw resource it creates (`aws:eks/cluster:Cluster`).
 */
export function resourcePolicy<C extends object = Record<string, never>>(
  spec: CommonSpec<C> & {
    types: readonly string[];
    validate: (props: Props, args: ResourceValidationArgs & { config: C }, report: ReportViolation) => void;
  },
): PlatformResourcePolicy {
  const validateResource: ResourceValidation & { __pulumiType?: string } = (args, report) => {
    if (!spec.types.includes(args.type)) {
      args.notApplicable(`Policy only applies to ${spec.types.join(', ')}`);
    }
    spec.validate(args.props, { ...args, config: configOf(spec.config, args.getConfig<C>()) }, report);
  };
  // The analyzer's fast path: with a single type attached, it skips other types without a call.
  if (spec.types.length === 1) validateResource.__pulumiType = spec.types[0];
  return { ...policyMetadata(spec), validateResource };
}

/** What the analyzer and our README read of a policy, the same for resource and stack policies. */
function policyMetadata<C extends object>(spec: CommonSpec<C> & { types: readonly string[] }) {
  return {
    name: spec.name,
    description: spec.description,
    severity: spec.severity,
    remediationSteps: spec.remediation,
    ...(spec.control ? { framework: frameworkOf(spec.control), url: spec.control.url } : {}),
    ...(spec.config ? { configSchema: spec.config.schema } : {}),
    tags: [spec.concern],
    platform: { control: spec.control, concern: spec.concern, resourceTypes: spec.types, config: spec.config },
  };
}

/** A stack policy: for rules that need more than one resource (a bucket and its public access block). */
export function stackPolicy<C extends object = Record<string, never>>(
  spec: CommonSpec<C> & {
    types: readonly string[];
    validate: (resources: PolicyResource[], args: StackValidationArgs & { config: C }, report: ReportViolation) => void;
  },
): PlatformStackPolicy {
  const validateStack: StackValidation = (args, report) => {
    spec.validate(args.resources, { ...args, config: configOf(spec.config, args.getConfig<C>()) }, report);
  };
  return { ...policyMetadata(spec), validateStack };
}

// ---------------------------------------------------------------------------------------
// Small readers shared by the rules. Props arrive as JSON; these keep the rules free of casts.

export function obj(v: unknown): Props | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Props) : undefined;
}

export function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function strs(v: unknown): string[] {
  return arr(v).filter((x): x is string => typeof x === 'string');
}

export function num(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
  return undefined;
}

export function at(v: unknown, ...path: (string | number)[]): unknown {
  let cur = v;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[p];
  }
  return cur;
}

/** `t4g.*` style patterns: `*` matches any run of characters, everything else is literal. */
export function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return re.test(value);
}

/**
 * Everything a resource depends on, through explicit `dependsOn`, inputs and parents,
 * transitively. A chart installed by a component the resource depends on counts.
 */
export function dependencyClosure(r: PolicyResource): PolicyResource[] {
  const seen = new Set<string>([r.urn]);
  const out: PolicyResource[] = [];
  const queue: PolicyResource[] = [r];
  while (queue.length > 0) {
    const cur = queue.shift() as PolicyResource;
    const next = [...cur.dependencies, ...Object.values(cur.propertyDependencies).flat(), ...(cur.parent ? [cur.parent] : [])];
    for (const d of next) {
      if (seen.has(d.urn)) continue;
      seen.add(d.urn);
      out.push(d);
      queue.push(d);
    }
  }
  return out;
}

/** Direct references a resource makes through one input (or any input, when that input has no recorded dependencies). */
export function referencedBy(r: PolicyResource, property: string): PolicyResource[] {
  const byProperty = r.propertyDependencies[property];
  return byProperty && byProperty.length > 0 ? byProperty : r.dependencies;
}

export function describe(r: { type: string; name: string }): string {
  return `${r.type.split(':').pop() ?? r.type} '${r.name}'`;
}

/**
 * Reads a value that may be unknown during `pulumi preview` (the analyzer's proxy throws
 * on access). A stack rule that touched it unguarded would be skipped for the whole stack.
 */
export function known<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (e) {
    if (e instanceof UnknownValueError) return undefined;
    throw e;
  }
}

/** Resources of `types` that reference `target` through `property` (or by equal literal name). */
export function companionsOf(
  target: PolicyResource,
  resources: readonly PolicyResource[],
  types: readonly string[],
  property: string,
  sameName?: (companion: PolicyResource) => boolean,
): PolicyResource[] {
  return resources.filter(
    (c) => types.includes(c.type) && (referencedBy(c, property).some((d) => d.urn === target.urn) || (sameName?.(c) ?? false)),
  );
}

/** An IAM-style policy document given as JSON text or as an object; undefined when unparseable. */
export function policyDocument(v: unknown): Props | undefined {
  if (typeof v === 'string') {
    try {
      return obj(JSON.parse(v));
    } catch {
      return undefined;
    }
  }
  return obj(v);
}

export function statements(doc: Props | undefined): Props[] {
  const s = doc?.Statement ?? doc?.statements;
  return (Array.isArray(s) ? s : s === undefined ? [] : [s]).map(obj).filter((x): x is Props => x !== undefined);
}

export function oneOrMany(v: unknown): string[] {
  return typeof v === 'string' ? [v] : strs(v);
}
