/**
 * The api and worker as each stack deploys them, asserted on the captured graph and on the
 * rendered Kubernetes objects: the env the services will read (parsed with their own
 * schemas), hardened pods, rollout and shutdown timing, autoscaling, ingress, network
 * policies and ordering. Each stack's test file calls `describeWorkloads`.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { PLACEMENT } from '../../platform/cluster';
import type { StackConfig } from '../../platform/config';
import { buildContextTag } from '../../platform/registry/build-context';
import { API_PRE_STOP_SECONDS, CONTAINER_COMMANDS, WORKER_SHUTDOWN_GRACE_MS } from '../../platform/workloads';
import { MIN_WORKER_REPLICAS } from '../../platform/workloads/autoscaling';
import { ALB_SSL_POLICY } from '../../platform/workloads/ingress';
import { triggerProblem } from '../../services/cli/commands/doctor-cluster';
import { backlogQuery, EnvSchema, LONGEST_JOB_TIMEOUT_MS, MigrateEnvSchema, MONITORING, PATHS, PORTS, PUBLIC_ROUTES, SCRAPE_TARGETS, SECRET_ENV_KEYS, WorkerEnvSchema, parseEnv } from '../../services/contract';
import { REPO_ROOT, redactSecrets } from '../../tools/offline/capture';
import { type KubernetesObject, renderManifests } from '../../tools/offline/manifests';
import type { CapturedResource, CapturedStack } from '../../tools/offline/types';
import { type Inputs, mockedPassword, ofType, one, waitsFor } from './graph';
import { validateObject } from './manifests';

const NS = 'kubernetes:core/v1:Namespace';
const DEPLOYMENT = 'kubernetes:apps/v1:Deployment';
const CONFIG_MAP = 'kubernetes:core/v1:ConfigMap';
const SECRET = 'kubernetes:core/v1:Secret';
const JOB = 'kubernetes:batch/v1:Job';
const HPA = 'kubernetes:autoscaling/v2:HorizontalPodAutoscaler';
const SCALED_OBJECT = 'kubernetes:keda.sh/v1alpha1:ScaledObject';
const TRIGGER_AUTH = 'kubernetes:keda.sh/v1alpha1:TriggerAuthentication';
const INGRESS = 'kubernetes:networking.k8s.io/v1:Ingress';
const NETPOL = 'kubernetes:networking.k8s.io/v1:NetworkPolicy';
const PDB = 'kubernetes:policy/v1:PodDisruptionBudget';
const RELEASE = 'kubernetes:helm.sh/v3:Release';

type Pod = { containers: Inputs[]; [key: string]: unknown };

function objects(s: CapturedStack): KubernetesObject[] {
  return renderManifests(s).map((m) => m.object);
}

const WORKLOADS_COMPONENT = 'platform-kit:workloads:Workloads$';

/** Resources of a type the workloads component owns (the monitoring stack makes Secrets, ConfigMaps and an Ingress too). */
function ofWorkloads(s: CapturedStack, type: string): CapturedResource[] {
  return ofType(s, type).filter((r) => r.urn.includes(WORKLOADS_COMPONENT));
}

function appObjects(s: CapturedStack, namespace: string): CapturedResource[] {
  return s.resources.filter((r) => r.type.startsWith('kubernetes:') && r.type !== RELEASE && (r.inputs.metadata as Inputs | undefined)?.namespace === namespace);
}

function deployment(s: CapturedStack, role: 'api' | 'worker'): CapturedResource {
  return one(s, DEPLOYMENT, `workloads-${role}`);
}

function podOf(r: CapturedResource): Pod {
  return ((r.inputs.spec as Inputs).template as Inputs).spec as Pod;
}

function containerOf(r: CapturedResource): Inputs {
  const [c] = podOf(r).containers;
  if (!c) throw new Error(`${r.name} has no container`);
  return c;
}

/** The container's environment as the kubelet assembles it from envFrom: plain values (secrets unwrapped, as the mocks hold them). */
function environmentOf(s: CapturedStack, pod: Pod): { config: Record<string, string>; secret: Record<string, string>; configMap: CapturedResource; secretObject: CapturedResource } {
  const [container] = pod.containers;
  const refs = (container?.envFrom ?? []) as { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  const find = (type: string, name: string | undefined) => {
    const r = ofType(s, type).find((x) => (x.inputs.metadata as Inputs).name === name || x.urn.endsWith(`::${name}`) || autoNamed(x) === name);
    if (!r) throw new Error(`no ${type} named ${String(name)}`);
    return r;
  };
  const configMap = find(CONFIG_MAP, refs.find((r) => r.configMapRef)?.configMapRef?.name);
  const secretObject = find(SECRET, refs.find((r) => r.secretRef)?.secretRef?.name);
  return { config: configMap.inputs.data as Record<string, string>, secret: secretObject.inputs.stringData as Record<string, string>, configMap, secretObject };
}

function autoNamed(r: CapturedResource): string {
  return objectsByUrn.get(r.urn)?.metadata.name ?? '';
}
const objectsByUrn = new Map<string, KubernetesObject>();

export function describeWorkloads(get: () => CapturedStack, cfg: () => StackConfig): void {
  beforeAll(() => {
    for (const m of renderManifests(get())) objectsByUrn.set(m.urn, m.object);
  });

  describe('workloads: Kubernetes objects', () => {
    it('renders every object valid against the Kubernetes schemas, KEDA custom resources included', async () => {
      const rendered = objects(get());
      const kinds = new Set(rendered.map((o) => o.kind));
      for (const kind of ['Namespace', 'ServiceAccount', 'ConfigMap', 'Secret', 'Job', 'Deployment', 'Service', 'Ingress', 'HorizontalPodAutoscaler', 'ScaledObject', 'TriggerAuthentication', 'PodDisruptionBudget', 'NetworkPolicy']) {
        expect(kinds).toContain(kind);
      }
      for (const object of rendered) await validateObject(object);
    });

    it('puts the app in a namespace enforcing, auditing and warning at Pod Security restricted', () => {
      const ns = ofType(get(), NS).find((n) => (n.inputs.metadata as Inputs).name === cfg().app.namespace);
      const labels = (ns?.inputs.metadata as Inputs).labels as Record<string, string>;
      for (const mode of ['enforce', 'audit', 'warn']) expect(labels[`pod-security.kubernetes.io/${mode}`]).toBe('restricted');
    });

    it('names the service accounts as the IRSA trust policies expect, annotated with those roles; only the api\'s pods mount a token', () => {
      const s = get();
      for (const role of ['api', 'worker'] as const) {
        const account = one(s, 'kubernetes:core/v1:ServiceAccount', `workloads-${role}-service-account`);
        const metadata = account.inputs.metadata as Inputs;
        expect(metadata).toMatchObject({ name: role, namespace: cfg().app.namespace });
        const irsa = one(s, 'aws:iam/role:Role', `identity-${role}`);
        expect((metadata.annotations as Record<string, string>)['eks.amazonaws.com/role-arn']).toBe(s.outputs[`${role}RoleArn`]);
        expect(account.propertyDependencies?.metadata).toContain(irsa.urn);
        expect(String(irsa.inputs.assumeRolePolicy)).toContain(`system:serviceaccount:${cfg().app.namespace}:${role}`);
        // Off for any pod that merely names the account; a pod opts in.
        expect(account.inputs.automountServiceAccountToken).toBe(false);
      }
      // `platform doctor --stack` runs in the api's pods and reads the cluster with the token; the worker has no use for one.
      expect(podOf(deployment(s, 'api'))).toMatchObject({ serviceAccountName: 'api', automountServiceAccountToken: true });
      expect(podOf(deployment(s, 'worker'))).toMatchObject({ serviceAccountName: 'worker', automountServiceAccountToken: false });
      const job = one(s, JOB, 'workloads-migrations');
      expect((((job.inputs.spec as Inputs).template as Inputs).spec as Pod).automountServiceAccountToken).toBe(false);
      const migrations = one(s, 'kubernetes:core/v1:ServiceAccount', 'workloads-migrations-service-account');
      expect((migrations.inputs.metadata as Inputs).annotations).toBeUndefined();
    });

    it('waits for the cluster to be ready (nodes, the load balancer controller, KEDA) before any object', () => {
      const s = get();
      const releases = ofType(s, RELEASE).filter((r) => ['aws-load-balancer-controller', 'keda'].includes(String(r.inputs.chart)));
      expect(releases).toHaveLength(2);
      const app = appObjects(s, cfg().app.namespace);
      expect(app.length).toBeGreaterThan(25);
      for (const r of app) for (const release of releases) expect({ object: r.name, waitsFor: release.name, ok: waitsFor(s, r, release) }).toEqual({ object: r.name, waitsFor: release.name, ok: true });
    });
  });

  describe('workloads: the env contract', () => {
    const schemas = { api: EnvSchema, worker: WorkerEnvSchema } as const;

    it.each(['api', 'worker'] as const)('gives the %s exactly an environment it accepts at boot (no unknown name, no contradiction), with the cloud\'s values', (role) => {
      const s = get();
      const { config, secret } = environmentOf(s, podOf(deployment(s, role)));
      const env = parseEnv({ ...config, ...secret }, schemas[role].strict());
      expect(env).toMatchObject({
        NODE_ENV: 'production',
        SERVICE_NAME: role,
        DATABASE_SSL: 'verify-full',
        S3_BUCKET: s.outputs.uploadsBucket,
        S3_RESULTS_BUCKET: s.outputs.resultsBucket,
        S3_REGION: cfg().region,
        S3_PREFIX: cfg().storage.objectPrefix,
      });
      // The services connect as the least-privileged app role over TLS-verified PostgreSQL, never as the master user.
      const database = new URL(env.DATABASE_URL);
      expect(database.username).toBe(cfg().app.database.appUser);
      expect(database.hostname).toBe(s.outputs.databaseAddress);
      expect(database.search).toBe('');
      expect(database.password).toBe(mockedPassword('workloads-db-app-password', 32));
      // ElastiCache over TLS with its auth token.
      const redis = new URL(env.REDIS_URL);
      expect(redis.protocol).toBe('rediss:');
      expect(redis.password).toBe(mockedPassword('cache-auth', 64));
      expect(redis.hostname).toBe(s.outputs.redisAddress);
    });

    it('sizes the services from the stack file', () => {
      const s = get();
      const api = EnvSchema.parse({ ...environmentOf(s, podOf(deployment(s, 'api'))).config, ...environmentOf(s, podOf(deployment(s, 'api'))).secret });
      expect(api).toMatchObject({ PORT: PORTS.api, SHUTDOWN_GRACE_MS: cfg().app.api.shutdownGraceSeconds * 1000, LOG_LEVEL: cfg().app.logLevel, API_PROCESSES: 1 });
      const worker = WorkerEnvSchema.parse({ ...environmentOf(s, podOf(deployment(s, 'worker'))).config, ...environmentOf(s, podOf(deployment(s, 'worker'))).secret });
      expect(worker).toMatchObject({ WORKER_METRICS_PORT: PORTS.workerMetrics, WORKER_CONCURRENCY: cfg().app.worker.concurrency, JOBS_RUNNING_PER_USER: cfg().app.worker.jobsRunningPerUser, SHUTDOWN_GRACE_MS: LONGEST_JOB_TIMEOUT_MS });
    });

    it('gives the migrations Job the owner login and the roles it creates, which its schema accepts', () => {
      const s = get();
      const job = one(s, JOB, 'workloads-migrations');
      const { config, secret } = environmentOf(s, ((job.inputs.spec as Inputs).template as Inputs).spec as Pod);
      const env = MigrateEnvSchema.parse({ ...config, ...secret });
      expect(new URL(env.DATABASE_URL).username).toBe('platform_admin');
      expect(env).toMatchObject({ DATABASE_SSL: 'verify-full', DATABASE_APP_USER: cfg().app.database.appUser, DATABASE_SCALER_USER: cfg().app.database.scalerUser });
      expect(env.DATABASE_APP_PASSWORD).toBe(mockedPassword('workloads-db-app-password', 32));
      expect(env.DATABASE_SCALER_PASSWORD).toBe(mockedPassword('workloads-db-scaler-password', 32));
      // Only what its schema reads: nothing for Redis or the buckets.
      expect(Object.keys({ ...config, ...secret }).filter((key) => !(key in MigrateEnvSchema.shape))).toEqual([]);
    });

    it('keeps the signing key from the worker and every credential out of ConfigMaps, secret in state', () => {
      const s = get();
      const worker = environmentOf(s, podOf(deployment(s, 'worker')));
      expect({ ...worker.config, ...worker.secret }.KEY_ENCRYPTION_SECRET).toBeUndefined();
      for (const cm of ofType(s, CONFIG_MAP)) for (const key of SECRET_ENV_KEYS) expect(Object.keys(cm.inputs.data as Inputs)).not.toContain(key);
      const secrets = ofWorkloads(s, SECRET);
      expect(secrets.length).toBeGreaterThanOrEqual(4);
      for (const secretObject of secrets) {
        expect(secretObject.secretPaths.some((p) => p === 'stringData' || p.startsWith('stringData.'))).toBe(true);
        expect(secretObject.inputs.immutable).toBe(true);
      }
      const plaintexts = ['workloads-jwt-signing-key', 'workloads-db-app-password', 'workloads-db-scaler-password'].map((n) => mockedPassword(n, n.includes('jwt') ? 64 : 32));
      const visible = JSON.stringify([...s.resources.map((r) => redactSecrets(r.inputs, r.secretPaths)), objects(s)]);
      for (const secret of [...plaintexts, mockedPassword('database-master', 32), mockedPassword('cache-auth', 64)]) expect(visible).not.toContain(secret);
    });
  });

  describe('workloads: seen by the monitoring stack', () => {
    const SERVICE = 'kubernetes:core/v1:Service';
    const matches = (selector: Record<string, string>, labels: Record<string, string> | undefined) => Object.entries(selector).every(([k, v]) => labels?.[k] === v);
    const templateLabels = (r: CapturedResource) => (((r.inputs.spec as Inputs).template as Inputs).metadata as { labels: Record<string, string> }).labels;
    const labelsOf = (r: CapturedResource) => (r.inputs.metadata as { labels?: Record<string, string> }).labels;
    const ns = () => cfg().app.namespace;
    const inAppNamespace = (type: string) => ofType(get(), type).filter((r) => (r.inputs.metadata as Inputs).namespace === ns());

    it('carries the labels and port name the api\'s ServiceMonitor selects: exactly the api Service, onto the api pods\' port', () => {
      const s = get();
      const monitor = one(s, 'kubernetes:monitoring.coreos.com/v1:ServiceMonitor').inputs.spec as { selector: { matchLabels: Record<string, string> }; namespaceSelector: { matchNames: string[] }; endpoints: { port: string; path: string }[] };
      expect(monitor.namespaceSelector.matchNames).toEqual([ns()]);
      const selected = inAppNamespace(SERVICE).filter((svc) => matches(monitor.selector.matchLabels, labelsOf(svc)));
      expect(selected.map((svc) => svc.name)).toEqual(['workloads-api-service']);
      const service = selected[0] as CapturedResource;
      const [endpoint] = monitor.endpoints;
      const servicePort = ((service.inputs.spec as Inputs).ports as { name: string; targetPort: string }[]).find((p) => p.name === endpoint?.port);
      expect(servicePort).toBeDefined();
      // The Service sends that port to the api pods' container port of the same name, which serves /metrics.
      expect(matches((service.inputs.spec as { selector: Record<string, string> }).selector, templateLabels(deployment(s, 'api')))).toBe(true);
      expect(containerOf(deployment(s, 'api')).ports).toContainEqual(expect.objectContaining({ name: servicePort?.targetPort, containerPort: SCRAPE_TARGETS.api.port }));
      expect(endpoint?.path).toBe(PATHS.metrics);
    });

    it('carries the labels and port name the worker\'s PodMonitor selects: the worker pods only', () => {
      const s = get();
      const monitor = one(s, 'kubernetes:monitoring.coreos.com/v1:PodMonitor', 'observability-worker-pod-monitor').inputs.spec as { selector: { matchLabels: Record<string, string> }; namespaceSelector: { matchNames: string[] }; podMetricsEndpoints: { port: string }[] };
      expect(monitor.namespaceSelector.matchNames).toEqual([ns()]);
      expect(matches(monitor.selector.matchLabels, templateLabels(deployment(s, 'worker')))).toBe(true);
      expect(matches(monitor.selector.matchLabels, templateLabels(deployment(s, 'api')))).toBe(false);
      expect(matches(monitor.selector.matchLabels, templateLabels(one(s, JOB, 'workloads-migrations')))).toBe(false);
      expect(containerOf(deployment(s, 'worker')).ports).toEqual([{ name: monitor.podMetricsEndpoints[0]?.port, containerPort: SCRAPE_TARGETS.worker.port, protocol: 'TCP' }]);
    });

    it('admits the contract\'s monitoring namespace to exactly the scraped ports, and to nothing else', () => {
      const fromMonitoring = (rule: { from?: Inputs[] }) => (rule.from ?? []).some((peer) => JSON.stringify(peer) === JSON.stringify({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': MONITORING.namespace } } }));
      const admitted = inAppNamespace(NETPOL).flatMap((p) => {
        const spec = p.inputs.spec as { podSelector: { matchLabels?: Record<string, string> }; ingress?: { from?: Inputs[]; ports: { port: number }[] }[] };
        return (spec.ingress ?? []).filter(fromMonitoring).flatMap((rule) => rule.ports.map((port) => ({ pods: spec.podSelector.matchLabels, port: port.port })));
      });
      expect(admitted).toEqual(
        expect.arrayContaining([
          { pods: SCRAPE_TARGETS.api.podLabels, port: SCRAPE_TARGETS.api.port },
          { pods: SCRAPE_TARGETS.worker.podLabels, port: SCRAPE_TARGETS.worker.port },
        ]),
      );
      expect(admitted).toHaveLength(2);
    });

    it('runs the api as the service account `platform doctor --stack` is bound to, in both its roles', () => {
      const s = get();
      const api = podOf(deployment(s, 'api'));
      for (const type of ['kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding', 'kubernetes:rbac.authorization.k8s.io/v1:RoleBinding']) {
        const bindings = ofType(s, type).filter((b) => (b.inputs.metadata as Inputs).name === 'platform-kit-doctor');
        expect(bindings).toHaveLength(1);
        expect((bindings[0] as CapturedResource).inputs.subjects).toEqual([{ kind: 'ServiceAccount', name: api.serviceAccountName, namespace: ns() }]);
      }
      expect(api.automountServiceAccountToken).toBe(true);
    });
  });

  describe('workloads: image and commands', () => {
    it('builds the image from this repository, tagged by its content, and deploys the digest the push returned', () => {
      const s = get();
      const build = one(s, 'docker-build:index:Image');
      const tag = buildContextTag(REPO_ROOT);
      expect(build.inputs).toMatchObject({ push: true, tags: [`${String(s.outputs.repositoryUrl)}:${tag}`], context: { location: '.' }, dockerfile: { location: 'Dockerfile' }, platforms: ['linux/amd64'] });
      expect(build.secretPaths).toContain('registries.0.password');
      expect(s.outputs.imageTag).toBe(tag);
      const image = String(s.outputs.imageRef);
      expect(image).toMatch(new RegExp(`^${String(s.outputs.repositoryUrl).replace(/[.]/g, '\\.')}@sha256:[0-9a-f]{64}$`));
      for (const r of [deployment(s, 'api'), deployment(s, 'worker'), one(s, JOB, 'workloads-migrations')]) {
        const pod = r.type === JOB ? (((r.inputs.spec as Inputs).template as Inputs).spec as Pod) : podOf(r);
        expect(pod.containers[0]?.image).toBe(image);
      }
    });

    it('runs the entry points `npm start` runs, compiled under /app', () => {
      const s = get();
      expect(containerOf(deployment(s, 'api')).command).toEqual(CONTAINER_COMMANDS.api);
      expect(containerOf(deployment(s, 'worker')).command).toEqual(CONTAINER_COMMANDS.worker);
      const job = one(s, JOB, 'workloads-migrations');
      expect((((job.inputs.spec as Inputs).template as Inputs).spec as Pod).containers[0]?.command).toEqual(CONTAINER_COMMANDS.migrations);
      for (const command of Object.values(CONTAINER_COMMANDS)) {
        const script = command.find((arg) => arg.startsWith('/app/dist/')) ?? '';
        expect(existsSync(path.join(REPO_ROOT, script.replace('/app/dist/', '').replace(/\.js$/, '.ts')))).toBe(true);
      }
    });
  });

  describe('workloads: hardened pods', () => {
    it.each(['api', 'worker'] as const)('runs the %s restricted: non-root, read-only root, no capabilities, no escalation, RuntimeDefault seccomp', (role) => {
      const pod = podOf(deployment(get(), role));
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } });
      expect(containerOf(deployment(get(), role)).securityContext).toEqual({ allowPrivilegeEscalation: false, privileged: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
      expect(pod.volumes).toEqual([{ name: 'tmp', emptyDir: { sizeLimit: expect.any(String) } }]);
      expect(containerOf(deployment(get(), role)).volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }]);
    });

    it('requests CPU and memory as the stack file says and limits memory', () => {
      for (const role of ['api', 'worker'] as const) {
        const r = cfg().app[role].resources;
        expect(containerOf(deployment(get(), role)).resources).toEqual({ requests: { cpu: r.cpu, memory: r.memory }, limits: { memory: r.memory } });
      }
    });

    it('probes the contract\'s ports and paths: startup and liveness on /healthz, readiness on /readyz', () => {
      const expected = { api: 'http', worker: 'metrics' } as const;
      for (const role of ['api', 'worker'] as const) {
        const c = containerOf(deployment(get(), role));
        expect(c.ports).toEqual([{ name: expected[role], containerPort: role === 'api' ? PORTS.api : PORTS.workerMetrics, protocol: 'TCP' }]);
        for (const [probe, p] of [['startupProbe', PATHS.healthz], ['livenessProbe', PATHS.healthz], ['readinessProbe', PATHS.readyz]] as const) {
          expect((c[probe] as Inputs).httpGet).toEqual({ path: p, port: expected[role], scheme: 'HTTP' });
        }
      }
    });

    it('spreads replicas across zones and rolls out by surge only (maxUnavailable 0)', () => {
      for (const role of ['api', 'worker'] as const) {
        const d = deployment(get(), role);
        expect((d.inputs.spec as Inputs).strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
        // The autoscalers own the replica count; a Deployment that set it would be reset by every `up`.
        expect((d.inputs.spec as Inputs).replicas).toBeUndefined();
        const spread = podOf(d).topologySpreadConstraints as Inputs[];
        expect(spread).toEqual(expect.arrayContaining([expect.objectContaining({ topologyKey: 'topology.kubernetes.io/zone', maxSkew: 1, whenUnsatisfiable: cfg().app.zoneSpread === 'required' ? 'DoNotSchedule' : 'ScheduleAnyway' })]));
      }
    });

    it('lets the api drain: preStop sleep, then its shutdown grace, inside the termination grace period', () => {
      const d = deployment(get(), 'api');
      expect(containerOf(d).lifecycle).toEqual({ preStop: { sleep: { seconds: API_PRE_STOP_SECONDS } } });
      expect(podOf(d).terminationGracePeriodSeconds).toBeGreaterThan(API_PRE_STOP_SECONDS + cfg().app.api.shutdownGraceSeconds);
    });

    it('lets a worker finish the longest job before it is killed: grace > preStop + longest job timeout', () => {
      const d = deployment(get(), 'worker');
      const preStop = ((containerOf(d).lifecycle as Inputs).preStop as { sleep: { seconds: number } }).sleep.seconds;
      expect(WORKER_SHUTDOWN_GRACE_MS).toBe(LONGEST_JOB_TIMEOUT_MS);
      expect(podOf(d).terminationGracePeriodSeconds).toBeGreaterThan(preStop + LONGEST_JOB_TIMEOUT_MS / 1000);
      // A rollout waits that long per pod without being declared stuck.
      expect((d.inputs.spec as Inputs).progressDeadlineSeconds).toBeGreaterThan(LONGEST_JOB_TIMEOUT_MS / 1000);
    });

    it('gives each worker its pod\'s uid as its WORKER_SLOT, so a restarted container releases what the last one was running; the api has no slot', () => {
      const s = get();
      const worker = containerOf(deployment(s, 'worker'));
      expect(worker.env).toEqual([{ name: 'WORKER_SLOT', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } }]);
      const { config, secret } = environmentOf(s, podOf(deployment(s, 'worker')));
      expect(Object.keys({ ...config, ...secret })).not.toContain('WORKER_SLOT');
      // What the kubelet assembles, with a uid as the API server writes one, is what the worker's schema accepts.
      const podUid = '3f1c9c7e-8a4b-4f55-9d0e-1b2c3d4e5f60';
      expect(WorkerEnvSchema.parse({ ...config, ...secret, WORKER_SLOT: podUid }).WORKER_SLOT).toBe(podUid);
      expect(containerOf(deployment(s, 'api')).env).toBeUndefined();
    });

    it('runs the worker on the jobs pool, the api and the migrations on the system pool', () => {
      const s = get();
      expect(podOf(deployment(s, 'worker'))).toMatchObject({ nodeSelector: PLACEMENT.jobs.nodeSelector, tolerations: PLACEMENT.jobs.tolerations });
      expect(podOf(deployment(s, 'api'))).toMatchObject({ nodeSelector: PLACEMENT.system.nodeSelector, tolerations: [] });
      const job = one(s, JOB, 'workloads-migrations');
      expect((((job.inputs.spec as Inputs).template as Inputs).spec as Pod).nodeSelector).toEqual(PLACEMENT.system.nodeSelector);
    });
  });

  describe('workloads: migrations before rollout', () => {
    it('runs the migrations Job to completion before either Deployment and before the scaler counts with its role', () => {
      const s = get();
      const job = one(s, JOB, 'workloads-migrations');
      for (const role of ['api', 'worker'] as const) expect(waitsFor(s, deployment(s, role), job)).toBe(true);
      expect(waitsFor(s, one(s, SCALED_OBJECT), job)).toBe(true);
      const spec = job.inputs.spec as Inputs;
      expect(spec).toMatchObject({ backoffLimit: expect.any(Number), activeDeadlineSeconds: expect.any(Number) });
      expect(((spec.template as Inputs).spec as Inputs).restartPolicy).toBe('Never');
    });
  });

  describe('workloads: autoscaling', () => {
    it('scales the api with an HPA on CPU, bounds and target from the stack file', () => {
      const hpa = one(get(), HPA);
      const { replicas, targetCpuUtilization } = cfg().app.api;
      expect(hpa.inputs.spec).toMatchObject({
        scaleTargetRef: { kind: 'Deployment', name: 'api' },
        minReplicas: replicas.min,
        maxReplicas: replicas.max,
        metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: targetCpuUtilization } } }],
      });
    });

    it('scales the worker with a KEDA ScaledObject on the PostgreSQL backlog, and no HPA beside it', () => {
      const s = get();
      const scaled = one(s, SCALED_OBJECT);
      const { replicas, concurrency, backlogPerReplica, jobsRunningPerUser } = cfg().app.worker;
      const spec = scaled.inputs.spec as Inputs;
      expect(spec).toMatchObject({ scaleTargetRef: { kind: 'Deployment', name: 'worker' }, minReplicaCount: replicas.min, maxReplicaCount: replicas.max });
      const [trigger, ...others] = spec.triggers as Inputs[];
      expect(others).toEqual([]);
      expect(trigger).toMatchObject({
        type: 'postgresql',
        metadata: {
          query: backlogQuery(jobsRunningPerUser),
          targetQueryValue: String(backlogPerReplica ?? concurrency),
          host: s.outputs.databaseAddress,
          dbName: s.outputs.databaseName,
          userName: cfg().app.database.scalerUser,
          sslmode: 'require',
        },
      });
      const auth = one(s, TRIGGER_AUTH);
      expect((trigger?.authenticationRef as Inputs).name).toBe((auth.inputs.metadata as Inputs).name);
      const [ref] = (auth.inputs.spec as { secretTargetRef: { parameter: string; name: string; key: string }[] }).secretTargetRef;
      expect(ref).toMatchObject({ parameter: 'password', key: 'password' });
      const secretObject = ofType(s, SECRET).find((x) => autoNamed(x) === ref?.name) as CapturedResource;
      expect((secretObject.inputs.stringData as Inputs).password).toBe(mockedPassword('workloads-db-scaler-password', 32));
      for (const h of ofType(s, HPA)) expect(((h.inputs.spec as Inputs).scaleTargetRef as Inputs).name).not.toBe('worker');
    });

    it('keeps a worker running when idle and scales on what `platform doctor --stack` checks the scaler against', () => {
      const spec = one(get(), SCALED_OBJECT).inputs.spec as { minReplicaCount: number; triggers: { type: string; metadata: Record<string, string> }[] };
      // With none, WorkerAbsent pages and the alerts on the worker's metrics go blind (platform/workloads/autoscaling.ts).
      expect(spec.minReplicaCount).toBeGreaterThanOrEqual(MIN_WORKER_REPLICAS);
      expect(spec.triggers.map((t) => triggerProblem(t))).toEqual([undefined]);
    });

    it('gives both Deployments a PodDisruptionBudget over their pods', () => {
      const s = get();
      for (const role of ['api', 'worker'] as const) {
        const pdb = one(s, PDB, `workloads-${role}-pdb`);
        const labels = ((deployment(s, role).inputs.spec as Inputs).template as { metadata: { labels: Record<string, string> } }).metadata.labels;
        const selector = ((pdb.inputs.spec as Inputs).selector as { matchLabels: Record<string, string> }).matchLabels;
        for (const [k, v] of Object.entries(selector)) expect(labels[k]).toBe(v);
        expect((pdb.inputs.spec as Inputs).maxUnavailable).toBe(1);
      }
    });
  });

  describe('workloads: ingress', () => {
    const ingress = (s: CapturedStack) => one(s, INGRESS, 'workloads-api-ingress');
    const annotations = (s: CapturedStack) => (ingress(s).inputs.metadata as Inputs).annotations as Record<string, string>;

    it('asks for an internet-facing ALB with HTTPS on the stack certificate, HTTP redirected, a modern TLS policy', () => {
      const s = get();
      expect(annotations(s)).toMatchObject({
        'alb.ingress.kubernetes.io/scheme': 'internet-facing',
        'alb.ingress.kubernetes.io/target-type': 'ip',
        'alb.ingress.kubernetes.io/listen-ports': '[{"HTTP":80},{"HTTPS":443}]',
        'alb.ingress.kubernetes.io/ssl-redirect': '443',
        'alb.ingress.kubernetes.io/certificate-arn': s.outputs.ingressCertificateArn,
        'alb.ingress.kubernetes.io/ssl-policy': ALB_SSL_POLICY,
        'alb.ingress.kubernetes.io/healthcheck-path': PATHS.readyz,
        'alb.ingress.kubernetes.io/subnets': (s.outputs.publicSubnetIds as string[]).join(','),
      });
      expect((ingress(s).inputs.spec as Inputs).ingressClassName).toBe('alb');
    });

    it('routes only the public API paths to the api Service, never /metrics or the probes', () => {
      const [rule, ...others] = (ingress(get()).inputs.spec as { rules: { host: string; http: { paths: { path: string; pathType: string; backend: Inputs }[] } }[] }).rules;
      expect(others).toEqual([]);
      expect(rule?.host).toBe(cfg().ingress.domain);
      const paths = rule?.http.paths ?? [];
      expect(paths.map((p) => [p.path, p.pathType])).toEqual(PUBLIC_ROUTES.map((r) => [r.path, r.match === 'exact' ? 'Exact' : 'Prefix']));
      for (const p of paths) expect(p.backend).toEqual({ service: { name: 'api', port: { name: 'http' } } });
      // The load balancer's own matching: Exact is the path itself, Prefix the path and what lies under it.
      const routed = (request: string) => paths.some((p) => (p.pathType === 'Exact' ? request === p.path : request === p.path || request.startsWith(`${p.path.replace(/\/$/, '')}/`)));
      for (const internal of [PATHS.metrics, PATHS.healthz, PATHS.readyz, '/metrics/', '/v1x', '/index.html']) expect({ internal, routed: routed(internal) }).toEqual({ internal, routed: false });
      // The web console: its pages (a job's under /jobs) and its assets.
      for (const open of ['/v1/jobs', '/openapi.json', '/docs/', '/', '/jobs/0b0ad3c1-5a1e-4c57-9c1b-0c3c0a4f5e6d', '/assets/index.js', '/sign-in']) expect({ open, routed: routed(open) }).toEqual({ open, routed: true });
    });

    it('attaches the WAF web ACL exactly where the stack file enables it', () => {
      const s = get();
      const acl = ofType(s, 'aws:wafv2/webAcl:WebAcl');
      if (cfg().ingress.waf.enabled) {
        expect(acl).toHaveLength(1);
        expect(annotations(s)['alb.ingress.kubernetes.io/wafv2-acl-arn']).toMatch(/^arn:aws:wafv2:/);
        expect(ingress(s).propertyDependencies?.metadata).toContain(acl[0]?.urn);
      } else {
        expect(acl).toEqual([]);
        expect(annotations(s)['alb.ingress.kubernetes.io/wafv2-acl-arn']).toBeUndefined();
      }
    });

    it('points a Route 53 alias for the domain at the Ingress load balancer', () => {
      const s = get();
      const record = one(s, 'aws:route53/record:Record', 'workloads-api-dns');
      expect(record.inputs).toMatchObject({ zoneId: cfg().ingress.hostedZoneId, name: cfg().ingress.domain, type: 'A', aliases: [{ name: s.outputs.loadBalancerHostname, evaluateTargetHealth: true }] });
      expect(waitsFor(s, record, ingress(s))).toBe(true);
    });
  });

  describe('workloads: network policies', () => {
    const policy = (s: CapturedStack, name: string) => one(s, NETPOL, `workloads-netpol-${name}`).inputs.spec as Inputs;

    it('denies all ingress and egress in the namespace by default, then allows DNS', () => {
      const s = get();
      expect(policy(s, 'default-deny')).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
      expect(policy(s, 'allow-dns')).toMatchObject({ podSelector: {}, policyTypes: ['Egress'], egress: [{ ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] }] });
    });

    it('admits the api from the load balancer\'s public subnets and from monitoring only', () => {
      const s = get();
      const spec = policy(s, 'api-ingress');
      const [fromLb, fromMonitoring] = spec.ingress as { from: Inputs[]; ports: Inputs[] }[];
      const cidrs = (fromLb?.from ?? []).map((p) => (p.ipBlock as { cidr: string }).cidr);
      expect(cidrs).toHaveLength((s.outputs.publicSubnetIds as string[]).length);
      for (const c of cidrs) expect(c).toMatch(/^\d+\.\d+\.\d+\.\d+\/2[0-8]$/);
      expect(fromLb?.ports).toEqual([{ protocol: 'TCP', port: PORTS.api }]);
      expect(fromMonitoring?.from).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': MONITORING.namespace } } }]);
      expect(policy(s, 'worker-ingress').ingress).toEqual([{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': MONITORING.namespace } } }], ports: [{ protocol: 'TCP', port: PORTS.workerMetrics }] }]);
    });

    it('lets the services out only to PostgreSQL and Redis in the VPC and to HTTPS, the migrations only to PostgreSQL', () => {
      const s = get();
      const vpc = cfg().network.cidrBlock;
      expect(policy(s, 'services-egress').egress).toEqual([
        { to: [{ ipBlock: { cidr: vpc } }], ports: [{ protocol: 'TCP', port: 5432 }, { protocol: 'TCP', port: 6379 }] },
        { to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['169.254.169.254/32'] } }], ports: [{ protocol: 'TCP', port: 443 }] },
      ]);
      expect(policy(s, 'migrations-egress').egress).toEqual([{ to: [{ ipBlock: { cidr: vpc } }], ports: [{ protocol: 'TCP', port: 5432 }] }]);
      // Every pod of the namespace is selected by some policy: nothing runs unrestricted.
      const selectors = ofType(s, NETPOL).filter((p) => (p.inputs.metadata as Inputs).namespace === cfg().app.namespace).map((p) => (p.inputs.spec as Inputs).podSelector);
      expect(selectors).toContainEqual({});
    });
  });

  it('exports the API URL, the image and the namespace', () => {
    const s = get();
    expect(s.outputs).toMatchObject({ apiUrl: `https://${cfg().ingress.domain}`, appNamespace: cfg().app.namespace });
    expect(s.outputs.imageRef).toEqual(expect.stringContaining('@sha256:'));
  });
}
