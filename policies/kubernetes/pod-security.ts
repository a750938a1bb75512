import { type PlatformPolicy, type Props, arr, at, describe, obj, resourcePolicy, str, strs } from '../lib/policy';
import { NAMESPACE, WORKLOAD_TYPES, containersOf, labelsOf, namespaceName, namespaceOf, podSpecOf } from '../lib/kube';
import { POD_SECURITY_EXCEPTIONS, type PodSecurityException } from './exceptions';

const PSS_URL = 'https://kubernetes.io/docs/concepts/security/pod-security-standards/';

/** Namespaces allowed below `restricted`, by name, with their level and reason (see ./exceptions). */
export interface PodSecurityConfig {
  exceptions: Record<string, PodSecurityException>;
}

const CONFIG = {
  schema: {
    properties: {
      exceptions: {
        type: 'object' as const,
        additionalProperties: {
          type: 'object' as const,
          properties: { level: { type: 'string' as const, enum: ['baseline', 'privileged'] }, reason: { type: 'string' as const, minLength: 1 } },
          required: ['level', 'reason'],
        },
        default: POD_SECURITY_EXCEPTIONS,
        description: 'Namespace → the Pod Security level it may enforce instead of restricted, and why.',
      },
    },
  },
  perStack: { dev: { exceptions: { ...POD_SECURITY_EXCEPTIONS } }, prod: { exceptions: { ...POD_SECURITY_EXCEPTIONS } } },
};

/** Capabilities baseline still allows a container to add. */
const BASELINE_CAPABILITIES = new Set(['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT']);
/** Volume types restricted allows; hostPath is forbidden even at baseline. */
const RESTRICTED_VOLUMES = new Set(['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']);

export type PssLevel = 'baseline' | 'restricted';

/** Pod Security Standards checks (plus a read-only root filesystem at restricted) for one pod spec. */
export function podSecurityProblems(pod: Props, level: PssLevel): string[] {
  const problems: string[] = [];
  const podCtx = obj(pod.securityContext) ?? {};
  for (const host of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
    if (pod[host] === true) problems.push(`pod sets ${host}: true`);
  }
  for (const v of arr(pod.volumes).map(obj)) {
    if (!v) continue;
    const kind = Object.keys(v).find((k) => k !== 'name') ?? 'unknown';
    if (kind === 'hostPath') problems.push(`volume '${str(v.name) ?? ''}' is a hostPath`);
    else if (level === 'restricted' && !RESTRICTED_VOLUMES.has(kind)) problems.push(`volume '${str(v.name) ?? ''}' has type ${kind}, not allowed at restricted`);
  }
  const podSeccomp = str(at(podCtx, 'seccompProfile', 'type'));
  if (podSeccomp === 'Unconfined') problems.push('pod seccompProfile is Unconfined');

  for (const c of containersOf(pod)) {
    const ctx = obj(c.spec.securityContext) ?? {};
    const where = `${c.kind} '${c.name}'`;
    if (ctx.privileged === true) problems.push(`${where} is privileged`);
    if (arr(c.spec.ports).some((p) => at(p, 'hostPort') !== undefined && at(p, 'hostPort') !== 0)) problems.push(`${where} uses a hostPort`);
    const added = strs(at(ctx, 'capabilities', 'add'));
    const seccomp = str(at(ctx, 'seccompProfile', 'type')) ?? podSeccomp;
    if (seccomp === 'Unconfined' && podSeccomp !== 'Unconfined') problems.push(`${where} seccompProfile is Unconfined`);
    if (level === 'baseline') {
      const extra = added.filter((cap) => !BASELINE_CAPABILITIES.has(cap));
      if (extra.length > 0) problems.push(`${where} adds capabilities ${extra.join(', ')}`);
      continue;
    }
    if (ctx.allowPrivilegeEscalation !== false) problems.push(`${where} must set allowPrivilegeEscalation: false`);
    if (!strs(at(ctx, 'capabilities', 'drop')).includes('ALL')) problems.push(`${where} must drop ALL capabilities`);
    const extra = added.filter((cap) => cap !== 'NET_BIND_SERVICE');
    if (extra.length > 0) problems.push(`${where} adds capabilities ${extra.join(', ')} (only NET_BIND_SERVICE is allowed)`);
    if ((ctx.runAsNonRoot ?? podCtx.runAsNonRoot) !== true) problems.push(`${where} must run as non-root (runAsNonRoot: true)`);
    if ((ctx.runAsUser ?? podCtx.runAsUser) === 0) problems.push(`${where} runs as UID 0`);
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') problems.push(`${where} must set seccompProfile.type RuntimeDefault`);
    if (c.kind !== 'ephemeralContainer' && ctx.readOnlyRootFilesystem !== true) problems.push(`${where} must set readOnlyRootFilesystem: true`);
  }
  return problems;
}

const ENFORCE_LABEL = 'pod-security.kubernetes.io/enforce';
export const EXCEPTION_ANNOTATION = 'platform-kit.io/pod-security-exception';
/** Admission modes a namespace labels: enforce rejects, audit records, warn tells the client. */
export const PSA_MODES = ['enforce', 'audit', 'warn'] as const;
const STRICTNESS: Record<string, number> = { privileged: 0, baseline: 1, restricted: 2 };

export const podSecurityPolicies: PlatformPolicy[] = [
  resourcePolicy<PodSecurityConfig>({
    name: 'kubernetes-pod-security-restricted',
    description:
      'Pods meet the Pod Security Standards `restricted` profile: runAsNonRoot, allowPrivilegeEscalation: false, capabilities drop ALL (add at most NET_BIND_SERVICE), seccompProfile RuntimeDefault, no host namespaces, hostPath or hostPort; plus readOnlyRootFilesystem: true on every container. A namespace listed in `exceptions` (policies/kubernetes/exceptions.ts: only the monitoring node agents\' namespace, at privileged) is held to its listed level instead.',
    control: { framework: 'Pod Security Standards', id: 'restricted', url: `${PSS_URL}#restricted` },
    concern: 'security',
    severity: 'high',
    remediation:
      'In the pod template: securityContext { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } }; per container: securityContext { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } } and an emptyDir for scratch space.',
    types: WORKLOAD_TYPES,
    config: CONFIG,
    validate: (props, args, report) => {
      const pod = podSpecOf(args.type, props);
      if (!pod) return;
      const ns = namespaceOf(props);
      const excepted = args.config.exceptions[ns]?.level;
      if (excepted === 'privileged') return;
      const level: PssLevel = excepted ?? 'restricted';
      const problems = podSecurityProblems(pod, level);
      if (problems.length > 0) report(`${describe(args)} in namespace '${ns}' breaks Pod Security ${level}: ${problems.join('; ')}.`);
    },
  }),
  resourcePolicy<PodSecurityConfig>({
    name: 'kubernetes-namespace-pod-security-admission',
    description:
      'Every Namespace the program creates labels all three Pod Security admission modes: `enforce` at `restricted`, and `audit` and `warn` set and no looser than `enforce`, so a violation is rejected, recorded in the audit log and shown to whoever applied it. A namespace listed by name in `exceptions` (policies/kubernetes/exceptions.ts: only the monitoring node agents\' namespace, at privileged) may enforce its listed level, and then must say why in the platform-kit.io/pod-security-exception annotation, so the exception is visible in the cluster too.',
    control: { framework: 'Pod Security Standards', id: 'admission', url: 'https://kubernetes.io/docs/concepts/security/pod-security-admission/' },
    concern: 'security',
    severity: 'high',
    remediation: 'Label the Namespace pod-security.kubernetes.io/enforce, /audit and /warn: restricted; for a listed exception, enforce its listed level with the reason annotation and audit/warn restricted, so what would break under restricted stays visible.',
    types: [NAMESPACE],
    config: CONFIG,
    validate: (props, args, report) => {
      const name = namespaceName(props, args.name);
      const labels = labelsOf(at(props, 'metadata', 'labels'));
      const level = labels[ENFORCE_LABEL];
      const exception = args.config.exceptions[name];
      const quiet = PSA_MODES.filter((m) => m !== 'enforce').filter((m) => {
        const v = labels[`pod-security.kubernetes.io/${m}`];
        return v === undefined || (STRICTNESS[v] ?? -1) < (STRICTNESS[level ?? 'restricted'] ?? 2);
      });
      if (quiet.length > 0) {
        report(`${describe(args)} does not ${quiet.map((m) => (m === 'audit' ? 'audit' : 'warn about')).join(' or ')} Pod Security violations; label ${quiet.map((m) => `pod-security.kubernetes.io/${m}`).join(' and ')} at least as strict as enforce (${level ?? 'restricted'}).`);
      }
      if (level === 'restricted') return;
      if (exception !== undefined && level === exception.level) {
        const reason = labelsOf(at(props, 'metadata', 'annotations'))[EXCEPTION_ANNOTATION];
        if (!reason) report(`${describe(args)} enforces ${level} but does not say why: annotate ${EXCEPTION_ANNOTATION} (e.g. "${exception.reason}").`);
        return;
      }
      report(
        `${describe(args)} enforces ${level ?? 'no Pod Security level'}; label ${ENFORCE_LABEL}: ${exception !== undefined ? `${exception.level} (listed exception) or restricted` : 'restricted'}.`,
      );
    },
  }),
];
