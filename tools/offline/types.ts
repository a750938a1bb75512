/**
 * The shape of a Pulumi program's resource graph as captured offline under
 * `pulumi.runtime.setMocks`. Shared by `npm run plan`, `npm run policy` and the
 * infra and policy tests, so all of them reason about one and the same graph.
 */
export type StackName = 'dev' | 'prod';

export interface CapturedResource {
  /** Full URN as the engine would assign it. */
  urn: string;
  /** Pulumi type token, e.g. `aws:rds/instance:Instance` or `eks:index:Cluster`. */
  type: string;
  /** Logical name given to the resource constructor. */
  name: string;
  /** URN of the parent resource, or undefined for the stack's direct children. */
  parent?: string;
  /** URNs this resource depends on (explicit `dependsOn` plus input dependencies). */
  dependencies: string[];
  /** Whether the resource is a custom resource (true) or a component (false). */
  custom: boolean;
  /**
   * Inputs as the engine would see them before the provider's Check: plain JSON,
   * secrets unwrapped (the `secretPaths` list says which), resource references
   * turned into their URN or id strings.
   */
  inputs: Record<string, unknown>;
  /** JSON-pointer-like dotted paths of inputs that are secrets (e.g. `masterPassword`). */
  secretPaths: string[];
  /**
   * Reference to the explicit provider the resource was registered with, `<urn>::<id>` as
   * the engine passes it, or undefined when it uses the engine's default provider. Lets a
   * policy read provider settings such as the AWS provider's `defaultTags`.
   */
  provider?: string;
  /** Per input, the URNs it depends on (the engine's `propertyDependencies`). */
  propertyDependencies?: Record<string, string[]>;
}

export interface CapturedStack {
  stack: StackName;
  project: string;
  resources: CapturedResource[];
  /** Stack outputs, secrets kept wrapped as `{ secret: true }` markers rather than plain text. */
  outputs: Record<string, unknown>;
}
