import type * as k8s from '@pulumi/kubernetes';
import type * as pulumi from '@pulumi/pulumi';
import { HEALTH_PROBES, JOB_LABEL, SCRAPE_TARGETS } from '../../services/contract';
import type { Placement } from '../cluster/placement';

type PodSpec = k8s.types.input.core.v1.PodSpec;
type Container = k8s.types.input.core.v1.Container;
type Probe = k8s.types.input.core.v1.Probe;

/** The image's service user (node, UID 1000 in the Dockerfile). */
export const SERVICE_UID = 1000;

/** What the workloads are, as labels and names say it. */
export type WorkloadRole = 'api' | 'worker' | 'migrations';

/** What every object of the platform carries, whatever its role: the contract's `app.kubernetes.io/part-of`. */
export const PART_OF_LABELS: Readonly<Record<string, string>> = { 'app.kubernetes.io/part-of': SCRAPE_TARGETS.api.podLabels['app.kubernetes.io/part-of'] };

/**
 * Service account of each workload. The IRSA trust policies name the api's and the
 * worker's; `platform doctor --stack` runs in the api's pods, so the monitoring stack
 * binds its read-only access to the api's (platform/observability).
 */
export const SERVICE_ACCOUNTS = { api: 'api', worker: 'worker', migrations: 'migrations' } as const satisfies Record<WorkloadRole, string>;

/**
 * Labels a Deployment's selector, a Service, a PodDisruptionBudget and a NetworkPolicy
 * match on. The api's and the worker's are the contract's `SCRAPE_TARGETS` pod labels,
 * the ones the monitoring stack's ServiceMonitor and PodMonitor select; the migrations
 * Job's follow the same scheme under its own name.
 */
export function selectorLabels(role: WorkloadRole): Record<string, string> {
  if (role === 'migrations') return { ...PART_OF_LABELS, [JOB_LABEL]: 'migrations' };
  return { ...SCRAPE_TARGETS[role].podLabels };
}

export function podLabels(role: WorkloadRole): Record<string, string> {
  return { ...selectorLabels(role), 'app.kubernetes.io/component': role === 'api' ? 'server' : role === 'worker' ? 'job-runner' : 'schema-migration' };
}

/** CPU and memory per container: both requested, memory also the limit, CPU unlimited. */
export interface ResourceSpec {
  cpu: string;
  memory: string;
}

export function containerResources(r: ResourceSpec): k8s.types.input.core.v1.ResourceRequirements {
  return { requests: { cpu: r.cpu, memory: r.memory }, limits: { memory: r.memory } };
}

/** What Kubernetes should wait for when a pod stops. All in seconds. */
export interface ShutdownTiming {
  /** Sleep before SIGTERM, while endpoints and the load balancer stop sending new work. */
  preStopSeconds: number;
  /** The service's own drain after SIGTERM (SHUTDOWN_GRACE_MS). */
  drainSeconds: number;
  /** Past the drain: closing pools and connections, flushing logs. */
  closeSeconds: number;
}

/**
 * terminationGracePeriodSeconds: the preStop sleep, the drain and the close, so SIGKILL
 * never lands before the service has exited on its own. Kubernetes counts the preStop hook
 * inside the grace period.
 */
export function terminationGracePeriodSeconds(t: ShutdownTiming): number {
  return Math.ceil(t.preStopSeconds + t.drainSeconds + t.closeSeconds);
}

/** Restricted Pod Security at the pod: non-root (the image's numeric user), RuntimeDefault seccomp, files group-readable for IRSA's token. */
export const POD_SECURITY_CONTEXT: k8s.types.input.core.v1.PodSecurityContext = {
  runAsNonRoot: true,
  runAsUser: SERVICE_UID,
  runAsGroup: SERVICE_UID,
  // The projected IRSA web-identity token is readable by this group.
  fsGroup: SERVICE_UID,
  seccompProfile: { type: 'RuntimeDefault' },
};

/** Restricted Pod Security per container, plus a read-only root filesystem. */
export const CONTAINER_SECURITY_CONTEXT: k8s.types.input.core.v1.SecurityContext = {
  allowPrivilegeEscalation: false,
  privileged: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ['ALL'] },
};

/** The only writable path (the image declares it): uploads in flight, job scratch files. */
const TMP_VOLUME = 'tmp';

export interface ProbeSpec {
  port: string;
  path: string;
}

export interface PodProbes {
  startup: ProbeSpec;
  readiness: ProbeSpec;
  liveness: ProbeSpec;
}

function probes(p: PodProbes): Pick<Container, 'startupProbe' | 'readinessProbe' | 'livenessProbe'> {
  const get = (s: ProbeSpec) => ({ httpGet: { path: s.path, port: s.port, scheme: 'HTTP' } });
  const startupProbe: Probe = { ...get(p.startup), ...HEALTH_PROBES.startup };
  const readinessProbe: Probe = { ...get(p.readiness), periodSeconds: 5, failureThreshold: 2, successThreshold: 1, timeoutSeconds: 2 };
  const livenessProbe: Probe = { ...get(p.liveness), ...HEALTH_PROBES.liveness };
  return { startupProbe, readinessProbe, livenessProbe };
}

export interface PodSpecArgs {
  role: WorkloadRole;
  image: pulumi.Input<string>;
  /** The container command: one of the image's entry points. */
  command: readonly string[];
  serviceAccountName: string;
  /** Names of the ConfigMap and Secret holding the container's environment. */
  env: { configMap: pulumi.Input<string>; secret: pulumi.Input<string> };
  /** Variables set from the pod's own fields through the downward API: name → field path (`metadata.uid`). */
  fieldEnv?: Readonly<Record<string, string>>;
  resources: ResourceSpec;
  placement: Placement;
  /** Size of the /tmp emptyDir. */
  tmpSizeLimit: string;
  ports?: { name: string; containerPort: number }[];
  /** Absent for a Job, which runs to completion. */
  probes?: PodProbes;
  /** Absent for a Job. */
  shutdown?: ShutdownTiming;
  /** Spread replicas across zones (and nodes): `required` refuses to schedule a replica that would unbalance the zones, `preferred` only tries. */
  zoneSpread?: 'required' | 'preferred';
  restartPolicy?: 'Always' | 'Never';
  /**
   * Mount the service account's token, for a pod whose service account holds Kubernetes
   * API rights it uses (the api: `platform doctor --stack` reads the cluster with it).
   * Default false: IRSA's web-identity token is projected by EKS regardless.
   */
  kubernetesApiToken?: boolean;
}

/**
 * A pod spec every workload of the platform shares: restricted security context, no
 * service-account token unless asked for (IRSA's web-identity token is projected by EKS regardless), the
 * env from one ConfigMap and one Secret, requests and a memory limit, a /tmp emptyDir as
 * the one writable path, and the pool's node selector and tolerations.
 */
export function hardenedPodSpec(a: PodSpecArgs): PodSpec {
  const container: Container = {
    name: a.role,
    image: a.image,
    imagePullPolicy: 'IfNotPresent',
    command: [...a.command],
    envFrom: [{ configMapRef: { name: a.env.configMap } }, { secretRef: { name: a.env.secret } }],
    ...(a.fieldEnv ? { env: Object.entries(a.fieldEnv).map(([name, fieldPath]) => ({ name, valueFrom: { fieldRef: { fieldPath } } })) } : {}),
    resources: containerResources(a.resources),
    securityContext: CONTAINER_SECURITY_CONTEXT,
    volumeMounts: [{ name: TMP_VOLUME, mountPath: '/tmp' }],
    ...(a.ports ? { ports: a.ports.map((p) => ({ ...p, protocol: 'TCP' })) } : {}),
    ...(a.probes ? probes(a.probes) : {}),
    ...(a.shutdown && a.shutdown.preStopSeconds > 0 ? { lifecycle: { preStop: { sleep: { seconds: a.shutdown.preStopSeconds } } } } : {}),
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
  const labels = selectorLabels(a.role);
  return {
    serviceAccountName: a.serviceAccountName,
    automountServiceAccountToken: a.kubernetesApiToken ?? false,
    enableServiceLinks: false,
    securityContext: POD_SECURITY_CONTEXT,
    containers: [container],
    volumes: [{ name: TMP_VOLUME, emptyDir: { sizeLimit: a.tmpSizeLimit } }],
    nodeSelector: a.placement.nodeSelector,
    tolerations: a.placement.tolerations.map((t) => ({ ...t })),
    ...(a.restartPolicy ? { restartPolicy: a.restartPolicy } : {}),
    ...(a.shutdown ? { terminationGracePeriodSeconds: terminationGracePeriodSeconds(a.shutdown) } : {}),
    ...(a.zoneSpread
      ? {
          topologySpreadConstraints: [
            { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: a.zoneSpread === 'required' ? 'DoNotSchedule' : 'ScheduleAnyway', labelSelector: { matchLabels: labels } },
            { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: labels } },
          ],
        }
      : {}),
  };
}

/** Rollouts add a pod before removing one: capacity never dips below the replicas running. */
export const ROLLING_UPDATE: k8s.types.input.apps.v1.DeploymentStrategy = { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } };
