/**
 * Run the Pulumi program of one stack under the shared mocks and return its resource
 * graph: what `npm run plan`, `npm run policy` and the infra and policy tests inspect.
 *
 * ONE CAPTURE PER PROCESS (per module registry). Pulumi's runtime keeps its settings,
 * config and root stack resource in process-global state, and Node caches the program
 * module, so a second `captureStack` in the same module registry would neither re-run the
 * program nor reset the runtime. A second call rejects with an error saying so.
 * Each jest test file has its own module registry and globals, so one capture per
 * test file works (several test files may run in one worker, one after another).
 *
 * Errors while the program runs (a bad `Pulumi.<stack>.yaml` value, a component's
 * validation) reject the returned promise with the program's own message.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { createMocks } from './mocks';
import type { CapturedResource, CapturedStack, StackName } from './types';

export const STACKS: readonly StackName[] = ['dev', 'prod'];
export const REPO_ROOT = path.resolve(__dirname, '..', '..');
const PROGRAM = path.join(REPO_ROOT, 'stacks', 'index.ts');

export interface CaptureOptions {
  /**
   * Config overrides, applied over the stack file, keyed like the stack file:
   * `platform-kit:database` replaces the whole object (value: JSON text), while a dotted
   * key such as `platform-kit:database.instanceClass` sets one nested value (value: JSON
   * text when it parses, e.g. `true` or `3`, otherwise the plain string), like
   * `pulumi config set --path`. Meant for bad-config tests.
   */
  config?: Record<string, string>;
  /**
   * Another program to run with the stack's config instead of `stacks/index.ts`, e.g. a
   * test fixture that puts a dependent on a component the way a later component will.
   */
  program?: string;
}

// Wire signatures of Pulumi's property serialization (sdk/nodejs/runtime/rpc.ts).
const SIG_KEY = '4dabf18193072939515e22adb298388d';
const SIG_SECRET = '1b47061264138c4ac30d75fd1eb44270';
const SIG_RESOURCE = '5cf8f73096256a8f31e491e813e4eb8e';
const SIG_ASSET = 'c44067f5952c0a294b673a41bacd8c17';
const SIG_ARCHIVE = '0def7320c3a5731c473e5ecbe6d01bc7';
const SIG_OUTPUT = 'd0e6a833031e9bbcd3f4e8bde6ca49a4';
const UNKNOWN = '04da6b54-80e4-46f7-96ec-b56ff0331ba9';

/** Placeholder for a `secure:` stack value: the ciphertext cannot be decrypted without the CLI. */
export function securePlaceholder(key: string): string {
  return `offline-secret:${key}`;
}

export interface YamlParser {
  load(text: string): unknown;
  dump(value: unknown, options?: { lineWidth?: number; noRefs?: boolean; sortKeys?: boolean }): string;
}

/**
 * The YAML parser Pulumi's own automation API reads stack files with, resolved through
 * @pulumi/pulumi so it is the version Pulumi declares rather than an undeclared hoist.
 */
export function yamlParser(): YamlParser {
  const pulumiDir = path.dirname(require.resolve('@pulumi/pulumi/package.json'));
  return createRequire(path.join(pulumiDir, 'package.json'))('js-yaml') as YamlParser;
}

/**
 * Flatten a stack file's `config:` block into the runtime's shape (`key → string`,
 * structured values as JSON) and list the keys that hold `secure:` values. Pure.
 */
export function stackFileConfig(yamlText: string, file: string): { config: Record<string, string>; secretKeys: string[] } {
  const doc = yamlParser().load(yamlText) as { config?: Record<string, unknown> } | null;
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [key, value] of Object.entries(doc?.config ?? {})) {
    if (!key.includes(':')) throw new Error(`${file}: config key ${key} has no namespace (expected e.g. platform-kit:${key})`);
    let secret = false;
    const replaceSecure = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(replaceSecure);
      if (v !== null && typeof v === 'object') {
        const obj = v as Record<string, unknown>;
        if (Object.keys(obj).length === 1 && typeof obj.secure === 'string') {
          secret = true;
          return securePlaceholder(key);
        }
        return Object.fromEntries(Object.entries(obj).map(([k, x]) => [k, replaceSecure(x)]));
      }
      return v;
    };
    const plain = replaceSecure(value);
    config[key] = typeof plain === 'string' ? plain : JSON.stringify(plain);
    if (secret) secretKeys.push(key);
  }
  return { config, secretKeys };
}

/** Apply `CaptureOptions.config` overrides (see there) to a flattened config. Pure. */
export function applyOverrides(config: Record<string, string>, overrides: Record<string, string>): Record<string, string> {
  const out = { ...config };
  for (const [key, value] of Object.entries(overrides)) {
    const colon = key.indexOf(':');
    const dot = key.indexOf('.', colon);
    if (dot < 0) {
      out[key] = value;
      continue;
    }
    const base = key.slice(0, dot);
    const segments = key.slice(dot + 1).split('.');
    const root = (out[base] !== undefined ? JSON.parse(out[base]) : {}) as Record<string, unknown>;
    let node: Record<string, unknown> = root;
    for (const seg of segments.slice(0, -1)) {
      const next = node[seg];
      node = (next !== null && typeof next === 'object' ? next : (node[seg] = {})) as Record<string, unknown>;
    }
    let parsed: unknown = value;
    try {
      parsed = JSON.parse(value);
    } catch {
      // Not JSON: keep the plain string, as `pulumi config set --path` would.
    }
    node[segments[segments.length - 1] ?? ''] = parsed;
    out[base] = JSON.stringify(root);
  }
  return out;
}

function pathKey(parent: string, key: string | number): string {
  if (typeof key === 'number') return parent === '' ? String(key) : `${parent}.${key}`;
  const seg = /^[^.[\]"]+$/.test(key) ? key : `[${JSON.stringify(key)}]`;
  return parent === '' ? seg : seg.startsWith('[') ? `${parent}${seg}` : `${parent}.${seg}`;
}

/** Split a secret path back into segments (`a.b[\"k.x\"].0` → `['a','b','k.x','0']`). */
export function splitPath(p: string): string[] {
  const out: string[] = [];
  const re = /\[("(?:[^"\\]|\\.)*")\]|([^.[\]]+)/g;
  for (let m = re.exec(p); m !== null; m = re.exec(p)) out.push(m[1] !== undefined ? (JSON.parse(m[1]) as string) : (m[2] ?? ''));
  return out;
}

/** A copy of `inputs` with every value at a secret path replaced by `"[secret]"`. */
export function redactSecrets(inputs: Record<string, unknown>, secretPaths: readonly string[]): Record<string, unknown> {
  const copy = structuredClone(inputs);
  for (const p of secretPaths) {
    const segs = splitPath(p);
    let node: unknown = copy;
    for (const seg of segs.slice(0, -1)) node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[seg] : undefined;
    const last = segs[segs.length - 1];
    if (node !== null && typeof node === 'object' && last !== undefined) (node as Record<string, unknown>)[last] = '[secret]';
  }
  return copy;
}

/**
 * Turn wire-format properties into plain JSON: secrets unwrapped (their paths collected),
 * resource references into the id (custom resources) or URN (components), assets into
 * a short description, unknowns into "[unknown]".
 */
function plainify(value: unknown, at: string, secretPaths: string[], markSecrets: boolean): unknown {
  if (Array.isArray(value)) return value.map((v, i) => plainify(v, pathKey(at, i), secretPaths, markSecrets));
  if (value === UNKNOWN) return '[unknown]';
  if (value === null || typeof value !== 'object') return value;
  const obj = value as Record<string, unknown>;
  switch (obj[SIG_KEY]) {
    case SIG_SECRET:
      secretPaths.push(at);
      return markSecrets ? { secret: true } : plainify(obj.value, at, secretPaths, markSecrets);
    case SIG_RESOURCE:
      return typeof obj.id === 'string' && obj.id !== '' ? obj.id : obj.urn;
    case SIG_OUTPUT:
      if (obj.secret === true) {
        secretPaths.push(at);
        if (markSecrets) return { secret: true };
      }
      return 'value' in obj ? plainify(obj.value, at, secretPaths, markSecrets) : '[unknown]';
    case SIG_ASSET:
    case SIG_ARCHIVE:
      return `[${obj[SIG_KEY] === SIG_ASSET ? 'asset' : 'archive'} ${String(obj.path ?? obj.uri ?? 'inline')}]`;
    default:
      return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, plainify(v, pathKey(at, k), secretPaths, markSecrets)]));
  }
}

/** What the engine is sent for one registration, kept raw until the run is over. */
interface Registration {
  urn: string;
  type: string;
  name: string;
  parent: string;
  dependencies: string[];
  custom: boolean;
  provider: string;
  propertyDependencies: Record<string, string[]>;
  object: Record<string, unknown>;
}

interface StructLike {
  toJavaScript(): Record<string, unknown>;
}
interface RegisterResourceRequestLike {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getProvider(): string;
  getDependenciesList(): string[];
  getPropertydependenciesMap(): { forEach(cb: (value: { getUrnsList(): string[] }, key: string) => void): void };
  getObject(): StructLike | undefined;
}
interface RegisterResourceOutputsRequestLike {
  getUrn(): string;
  getOutputs(): StructLike | undefined;
}
type Callback<T> = (err: unknown, response: T) => void;
interface MockMonitorLike {
  registerResource(req: RegisterResourceRequestLike, cb: Callback<{ getUrn(): string } | undefined>): Promise<void> | void;
  registerResourceOutputs(req: RegisterResourceOutputsRequestLike, cb: Callback<unknown>): void;
}

interface CaptureState {
  used: boolean;
}
const state: CaptureState = { used: false };

export async function captureStack(stack: StackName, opts: CaptureOptions = {}): Promise<CapturedStack> {
  if (!STACKS.includes(stack)) throw new Error(`unknown stack "${String(stack)}" (expected one of ${STACKS.join(', ')})`);
  if (state.used) {
    throw new Error('captureStack runs once per process (module registry): Pulumi runtime state is global. Capture each stack in its own process or jest test file.');
  }
  state.used = true;

  const file = `Pulumi.${stack}.yaml`;
  const project = (yamlParser().load(readFileSync(path.join(REPO_ROOT, 'Pulumi.yaml'), 'utf8')) as { name: string }).name;
  const fromFile = stackFileConfig(readFileSync(path.join(REPO_ROOT, file), 'utf8'), file);
  const config = applyOverrides(fromFile.config, opts.config ?? {});
  const region = config['aws:region'] ?? 'us-east-1';

  await pulumi.runtime.setMocks(createMocks({ region }), project, stack, false);
  pulumi.runtime.setAllConfig(config, fromFile.secretKeys);

  const registrations: Registration[] = [];
  let stackOutputs: Record<string, unknown> | undefined;
  let stackUrn = '';
  const monitor = pulumi.runtime.getMonitor() as unknown as MockMonitorLike;
  const registerResource = monitor.registerResource.bind(monitor);
  const registerResourceOutputs = monitor.registerResourceOutputs.bind(monitor);
  monitor.registerResource = (req, cb) =>
    registerResource(req, (err, res) => {
      if (!err && res) {
        const propertyDependencies: Record<string, string[]> = {};
        req.getPropertydependenciesMap().forEach((deps, key) => {
          const urns = [...new Set(deps.getUrnsList())].sort();
          if (urns.length > 0) propertyDependencies[key] = urns;
        });
        registrations.push({
          urn: res.getUrn(),
          type: req.getType(),
          name: req.getName(),
          parent: req.getParent(),
          dependencies: req.getDependenciesList(),
          custom: req.getCustom(),
          provider: req.getProvider(),
          propertyDependencies,
          object: req.getObject()?.toJavaScript() ?? {},
        });
        if (req.getType() === 'pulumi:pulumi:Stack') stackUrn = res.getUrn();
      }
      cb(err, res);
    });
  monitor.registerResourceOutputs = (req, cb) => {
    if (stackUrn !== '' && req.getUrn() === stackUrn) stackOutputs = req.getOutputs()?.toJavaScript() ?? {};
    registerResourceOutputs(req, cb);
  };

  const runtime = pulumi.runtime as unknown as { waitForRPCs(): Promise<void> };
  // The program's own failure is caught inside the stack's init and rethrown after the
  // stack has settled: a rejected init would also reject promises inside the SDK that
  // nobody awaits (the CLI's language host exits on those; here they would surface as
  // unhandled rejections after the caller already has its error).
  let programError: unknown;
  let failed = false;
  await pulumi.runtime.runInPulumiStack(async () => {
    try {
      return (await import(opts.program ?? PROGRAM)) as Record<string, unknown>;
    } catch (err) {
      failed = true;
      programError = err;
      return {};
    }
  });
  await runtime.waitForRPCs();
  if (failed) throw programError;

  const resources: CapturedResource[] = registrations
    .filter((r) => r.type !== 'pulumi:pulumi:Stack')
    .map((r) => {
      const secretPaths: string[] = [];
      const inputs = plainify(r.object, '', secretPaths, false) as Record<string, unknown>;
      const resource: CapturedResource = {
        urn: r.urn,
        type: r.type,
        name: r.name,
        dependencies: [...new Set(r.dependencies)].sort(),
        custom: r.custom,
        inputs,
        secretPaths: secretPaths.sort(),
      };
      if (r.parent !== '' && r.parent !== stackUrn) resource.parent = r.parent;
      if (r.provider !== '') resource.provider = r.provider;
      if (Object.keys(r.propertyDependencies).length > 0) {
        resource.propertyDependencies = Object.fromEntries(Object.entries(r.propertyDependencies).sort(([a], [b]) => (a < b ? -1 : 1)));
      }
      return resource;
    })
    .sort((a, b) => (a.urn < b.urn ? -1 : a.urn > b.urn ? 1 : 0));

  const outputSecrets: string[] = [];
  const outputs = plainify(stackOutputs ?? {}, '', outputSecrets, true) as Record<string, unknown>;
  return { stack, project, resources, outputs: Object.fromEntries(Object.entries(outputs).sort(([a], [b]) => (a < b ? -1 : 1))) };
}
