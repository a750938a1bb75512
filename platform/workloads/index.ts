import * as aws from '@pulumi/aws';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import * as random from '@pulumi/random';
import { DEFAULT_JOBS_RUNNING_PER_USER, MONITORING, PATHS, SCRAPE_TARGETS } from '../../services/contract';
import { PLACEMENT, type Placement } from '../cluster/placement';
import { RESTRICTED_NAMESPACE_LABELS } from '../shared/pod-security';
import { apiAutoscalerSpec, MIN_WORKER_REPLICAS, type ReplicaBounds, WORKER_MINIMUM_REASON, workerScaledObjectSpec } from './autoscaling';
import { CONTAINER_COMMANDS } from './commands';
import {
  apiEnvironment,
  CLOUD_QUEUE_PREFIX,
  type EnvironmentInputs,
  migrationsEnvironment,
  splitEnvironment,
  WORKER_FIELD_ENV,
  WORKER_SHUTDOWN_GRACE_MS,
  workerEnvironment,
} from './env';
import { MIGRATIONS_RESOURCES } from './footprint';
import { ingressAnnotations, ingressRules, validateIngressSettings } from './ingress';
import { networkPolicySpecs } from './network-policies';
import { hardenedPodSpec, PART_OF_LABELS, podLabels, type ResourceSpec, ROLLING_UPDATE, SERVICE_ACCOUNTS, selectorLabels, type ShutdownTiming, type WorkloadRole } from './pod';
import { createWebAcl } from './waf';

export { CONTAINER_COMMANDS } from './commands';
export { SERVICE_ACCOUNTS } from './pod';
export { WORKER_SHUTDOWN_GRACE_MS } from './env';

/** Seconds the api sleeps in preStop: the ALB and the endpoints stop sending before SIGTERM. */
export const API_PRE_STOP_SECONDS = 15;
/** Seconds the worker sleeps in preStop: its metrics endpoint leaves the scrape targets first. */
export const WORKER_PRE_STOP_SECONDS = 5;
/** Seconds past a drain for closing pools and flushing logs; the worker's runner adds 5 s of its own before abandoning a stuck processor. */
export const CLOSE_SECONDS = { api: 10, worker: 15 } as const;
/** Longest a migrations run may take before the Job fails the `up`. */
export const MIGRATIONS_DEADLINE_SECONDS = 900;

export interface ApiWorkloadSettings {
  /** HPA bounds. Required. */
  replicas: ReplicaBounds;
  /** Average CPU utilisation (% of the request) the HPA holds. Default 70. */
  targetCpuUtilization?: number;
  /** Requests per container (memory is also the limit). Required. */
  resources: ResourceSpec;
  /** SHUTDOWN_GRACE_MS in seconds: how long SIGTERM waits for in-flight requests. Default 25. */
  shutdownGraceSeconds?: number;
}

export interface WorkerWorkloadSettings {
  /** KEDA bounds, min at least `MIN_WORKER_REPLICAS` (1; see there why). Required. */
  replicas: ReplicaBounds;
  /** WORKER_CONCURRENCY. Required. */
  concurrency: number;
  /** JOBS_RUNNING_PER_USER: jobs of one user running at once across the fleet. Default: the contract's (50). */
  jobsRunningPerUser?: number;
  /** Jobs queued or running per replica KEDA aims for. Default: `concurrency`. */
  backlogPerReplica?: number;
  /** Seconds between backlog queries. Default 15. */
  pollingIntervalSeconds?: number;
  /** Seconds without backlog before scaling to the minimum. Default 300. */
  cooldownSeconds?: number;
  /** Requests per container (memory is also the limit). Required. */
  resources: ResourceSpec;
}

export interface WorkloadsArgs {
  /** Namespace of every object here, created with Pod Security `restricted`. Required. */
  namespace: string;
  /** The cluster's Kubernetes provider. Required. */
  provider: k8s.Provider;
  /** What every object waits for: the cluster's `ready` list (nodes, add-ons, admission webhooks, KEDA). Required. */
  after: pulumi.Resource[];
  /** The service image by digest (`<repository>@sha256:…`). Required. */
  image: pulumi.Input<string>;
  /** IRSA role ARNs the `api` and `worker` service accounts are annotated with. Required. */
  roleArns: { api: pulumi.Input<string>; worker: pulumi.Input<string> };
  /** AWS region of the buckets. Required. */
  region: string;
  /** RDS: address, port, database, and the master login the migrations Job uses. Required. */
  database: { address: pulumi.Input<string>; port: number; name: string; owner: { user: string; password: pulumi.Input<string> } };
  /** PostgreSQL roles the migrations Job creates for the services and the autoscaler. Default `platform_app`, `platform_scaler`. */
  databaseRoles?: { appUser: string; scalerUser: string };
  /** ElastiCache URL with its auth token (`rediss://:<token>@<host>:6379`). Secret. Required. */
  redisUrl: pulumi.Input<string>;
  /** Bucket names. Required. */
  buckets: { uploads: pulumi.Input<string>; results: pulumi.Input<string> };
  /** S3_PREFIX, the prefix the IRSA grants stop at. Default `files/`. */
  objectPrefix?: string;
  /** LOG_LEVEL of every service. Default `info`. */
  logLevel?: string;
  api: ApiWorkloadSettings;
  worker: WorkerWorkloadSettings;
  /** Zone spreading of api and worker replicas: `required` (DoNotSchedule) or `preferred`. Default `preferred`. */
  zoneSpread?: 'required' | 'preferred';
  ingress: {
    /** Public host name. Required. */
    domain: string;
    /** Route 53 zone of the domain, for the alias record. Required. */
    hostedZoneId: string;
    /** Validated ACM certificate of the domain. Required. */
    certificateArn: pulumi.Input<string>;
    /** Public subnets of the ALB. Required. */
    publicSubnetIds: pulumi.Input<string[]>;
    /** CIDRs of those subnets: the api admits the ALB's traffic from them only. Required, non-empty. */
    loadBalancerCidrs: pulumi.Input<string[]>;
    /** ALB name (≤ 32 characters). Default `<project>-<stack>-api`. */
    loadBalancerName?: string;
    /** A WAFv2 web ACL in front of the ALB. Default none. */
    waf?: { requestsPerFiveMinutesPerIp: number; logRetentionDays: number };
  };
  /** The VPC's CIDR: PostgreSQL and Redis are reached inside it. Required. */
  vpcCidrBlock: string;
  /** Namespace Prometheus scrapes from, admitted to the api's and the worker's metrics ports. Default the contract's `MONITORING.namespace`. */
  monitoringNamespace?: string;
  /** Pools: the api and the migrations on `system`, the worker on `jobs`. Default `PLACEMENT`. */
  placement?: { api: Placement; worker: Placement; migrations: Placement };
}

/** Problems with the args, empty when they are usable. Pure, so tests can call it. */
export function validateWorkloadsArgs(args: WorkloadsArgs): string[] {
  const problems: string[] = [];
  const { api, worker } = args;
  if (api.replicas.min < 1 || api.replicas.min > api.replicas.max) problems.push(`api.replicas must satisfy 1 ≤ min ≤ max (got ${api.replicas.min}..${api.replicas.max})`);
  if (worker.replicas.min < MIN_WORKER_REPLICAS || worker.replicas.min > worker.replicas.max) {
    problems.push(`worker.replicas must satisfy ${MIN_WORKER_REPLICAS} ≤ min ≤ max (got ${worker.replicas.min}..${worker.replicas.max}): ${WORKER_MINIMUM_REASON}`);
  }
  if (!Number.isInteger(worker.concurrency) || worker.concurrency < 1) problems.push('worker.concurrency must be a positive integer');
  if (worker.jobsRunningPerUser !== undefined && (!Number.isInteger(worker.jobsRunningPerUser) || worker.jobsRunningPerUser < 1)) {
    problems.push('worker.jobsRunningPerUser must be a positive integer');
  }
  if (worker.backlogPerReplica !== undefined && worker.backlogPerReplica < 1) problems.push('worker.backlogPerReplica must be at least 1');
  const roles = args.databaseRoles ?? { appUser: 'platform_app', scalerUser: 'platform_scaler' };
  if (new Set([roles.appUser, roles.scalerUser, args.database.owner.user]).size !== 3) problems.push('the app, scaler and owner database roles must be three different roles');
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(args.namespace)) problems.push(`namespace ${args.namespace} is not a Kubernetes namespace name`);
  problems.push(...validateIngressSettings({ loadBalancerName: args.ingress.loadBalancerName ?? defaultLoadBalancerName(), domain: args.ingress.domain }));
  return problems;
}

function defaultLoadBalancerName(): string {
  return `${pulumi.getProject()}-${pulumi.getStack()}-api`.slice(0, 32).replace(/-+$/, '');
}

/**
 * The api and the worker deployed from the stack's image onto the cluster, everything a
 * platform team expects around them:
 *
 * - a namespace enforcing Pod Security `restricted`, default-deny NetworkPolicies and one
 *   policy per flow (see `networkPolicySpecs`);
 * - service accounts named as the IRSA trust policies expect, with their role annotations;
 * - each service's environment built from infra outputs as a value typed by the services'
 *   own env schema (`./env`): plain settings in an immutable ConfigMap, credentials (the
 *   database URL of the least-privileged app role, the Redis URL with its auth token, the
 *   JWT signing key generated here) in an immutable Secret, secret in state too;
 * - the migrations Job (schema, then the app and scaler roles), which every rollout waits for;
 * - Deployments with hardened pods, probes on the contract's ports and paths, zone spread,
 *   surge-only rollouts and grace periods derived from the drains;
 * - a Service and an ALB Ingress routing only the public API paths, with TLS, an HTTP→HTTPS
 *   redirect, the optional WAF web ACL and a Route 53 alias;
 * - an HPA for the api and a KEDA ScaledObject for the worker counting the backlog in
 *   PostgreSQL; PodDisruptionBudgets for both.
 *
 * Objects that must change name when their content changes (ConfigMaps, Secrets, the Job)
 * are auto-named: a new one is created, the Deployments roll to it, the old one goes.
 */
export class Workloads extends pulumi.ComponentResource {
  public readonly namespace: pulumi.Output<string>;
  /** Deployment names by role. */
  public readonly deployments: { api: pulumi.Output<string>; worker: pulumi.Output<string> };
  public readonly ingressHostname: pulumi.Output<string>;
  /** The WAFv2 web ACL in front of the api's ALB, when `ingress.waf` is set; other internet-facing Ingresses of the stack may share it. */
  public readonly webAclArn: pulumi.Output<string> | undefined;
  /** `https://<domain>`. */
  public readonly url: string;
  public readonly migrationsJob: k8s.batch.v1.Job;

  constructor(name: string, args: WorkloadsArgs, opts?: pulumi.ComponentResourceOptions) {
    super('platform-kit:workloads:Workloads', name, {}, opts);
    const problems = validateWorkloadsArgs(args);
    if (problems.length > 0) throw new pulumi.ResourceError(`Workloads ${name}: ${problems.join('; ')}`, this);

    // Options every direct child shares: parented here, so it inherits this component's providers.
    const own = { parent: this };
    const provider = args.provider;
    const placement = args.placement ?? { api: PLACEMENT.system, worker: PLACEMENT.jobs, migrations: PLACEMENT.system };
    const roles = args.databaseRoles ?? { appUser: 'platform_app', scalerUser: 'platform_scaler' };
    const apiGraceSeconds = args.api.shutdownGraceSeconds ?? 25;
    const monitoringNamespace = args.monitoringNamespace ?? MONITORING.namespace;
    const zoneSpread = args.zoneSpread ?? 'preferred';

    const namespace = createNamespace();
    const ns = namespace.metadata.name;
    const secrets = generateSecrets();
    const inputs: EnvironmentInputs = {
      region: args.region,
      database: {
        address: args.database.address,
        port: args.database.port,
        name: args.database.name,
        owner: args.database.owner,
        app: { user: roles.appUser, password: secrets.appPassword },
        scaler: { user: roles.scalerUser, password: secrets.scalerPassword },
      },
      redisUrl: args.redisUrl,
      buckets: args.buckets,
      objectPrefix: args.objectPrefix ?? 'files/',
      keyEncryptionSecret: secrets.keyEncryptionSecret,
      tokenIssuer: `platform-kit/${pulumi.getProject()}/${pulumi.getStack()}`,
      publicUrl: `https://${args.ingress.domain}`,
      logLevel: args.logLevel ?? 'info',
      queuePrefix: CLOUD_QUEUE_PREFIX,
      api: { shutdownGraceMs: apiGraceSeconds * 1000 },
      worker: { concurrency: args.worker.concurrency, jobsRunningPerUser: args.worker.jobsRunningPerUser ?? DEFAULT_JOBS_RUNNING_PER_USER },
    };
    createNetworkPolicies();
    const accounts = {
      api: createServiceAccount('api', args.roleArns.api),
      worker: createServiceAccount('worker', args.roleArns.worker),
      migrations: createServiceAccount('migrations'),
    };
    const env = {
      api: createEnvironment('api', apiEnvironment(inputs)),
      worker: createEnvironment('worker', workerEnvironment(inputs)),
      migrations: createEnvironment('migrations', migrationsEnvironment(inputs)),
    };
    const migrations = createMigrationsJob();
    const api = createApi();
    const worker = createWorker();
    createDisruptionBudget('api');
    createDisruptionBudget('worker');
    const ingress = createIngress(api.service);

    this.namespace = ns;
    this.deployments = { api: api.deployment.metadata.name, worker: worker.metadata.name };
    this.ingressHostname = ingress.hostname;
    this.webAclArn = ingress.webAclArn;
    this.url = `https://${args.ingress.domain}`;
    this.migrationsJob = migrations;
    this.registerOutputs({ namespace: this.namespace, deployments: this.deployments, ingressHostname: this.ingressHostname, webAclArn: this.webAclArn, url: this.url });

    /** Options of a Kubernetes object: the cluster's provider, after the cluster is ready and after `more`. */
    function kube(more: pulumi.Resource[] = []): pulumi.CustomResourceOptions {
      return { ...own, provider, dependsOn: [...args.after, ...more] };
    }

    function meta(role: WorkloadRole | undefined, objectName?: string) {
      return { namespace: ns, ...(objectName ? { name: objectName } : {}), labels: role ? podLabels(role) : { ...PART_OF_LABELS } };
    }

    function createNamespace(): k8s.core.v1.Namespace {
      return new k8s.core.v1.Namespace(
        `${name}-namespace`,
        {
          metadata: {
            name: args.namespace,
            labels: {
              ...RESTRICTED_NAMESPACE_LABELS,
              // The load balancer controller holds a rollout until a new api pod is healthy in the ALB.
              'elbv2.k8s.aws/pod-readiness-gate-inject': 'enabled',
            },
          },
        },
        kube(),
      );
    }

    function generateSecrets() {
      // Alphanumeric: they go into URLs and env vars unescaped. 32 of 62 symbols is ~190 bits.
      const password = (role: string, length: number) => new random.RandomPassword(`${name}-${role}`, { length, special: false }, own).result;
      return { keyEncryptionSecret: password('key-encryption-secret', 64), appPassword: password('db-app-password', 32), scalerPassword: password('db-scaler-password', 32) };
    }

    function createNetworkPolicies(): void {
      const specs = networkPolicySpecs({ loadBalancerCidrs: args.ingress.loadBalancerCidrs, vpcCidrBlock: args.vpcCidrBlock, monitoringNamespace });
      for (const [policyName, spec] of Object.entries(specs)) {
        new k8s.networking.v1.NetworkPolicy(`${name}-netpol-${policyName}`, { metadata: { ...meta(undefined, policyName) }, spec }, kube());
      }
    }

    function createServiceAccount(role: WorkloadRole, roleArn?: pulumi.Input<string>): k8s.core.v1.ServiceAccount {
      return new k8s.core.v1.ServiceAccount(
        `${name}-${role}-service-account`,
        {
          metadata: { ...meta(role, SERVICE_ACCOUNTS[role]), ...(roleArn ? { annotations: { 'eks.amazonaws.com/role-arn': roleArn } } : {}) },
          automountServiceAccountToken: false,
        },
        kube(),
      );
    }

    /** One ConfigMap and one Secret for a container's env, both immutable and auto-named. */
    function createEnvironment(role: WorkloadRole, containerEnv: Record<string, pulumi.Input<string> | undefined>): { configMap: pulumi.Output<string>; secret: pulumi.Output<string>; resources: pulumi.Resource[] } {
      const { config, secret } = splitEnvironment(containerEnv);
      const configMap = new k8s.core.v1.ConfigMap(`${name}-${role}-env`, { metadata: meta(role), immutable: true, data: config }, kube());
      const secretObject = new k8s.core.v1.Secret(`${name}-${role}-env-secret`, { metadata: meta(role), immutable: true, type: 'Opaque', stringData: secret }, kube());
      return { configMap: configMap.metadata.name, secret: secretObject.metadata.name, resources: [configMap, secretObject] };
    }

    function createMigrationsJob(): k8s.batch.v1.Job {
      return new k8s.batch.v1.Job(
        `${name}-migrations`,
        {
          metadata: meta('migrations'),
          spec: {
            backoffLimit: 3,
            activeDeadlineSeconds: MIGRATIONS_DEADLINE_SECONDS,
            template: {
              metadata: { labels: podLabels('migrations') },
              spec: hardenedPodSpec({
                role: 'migrations',
                image: args.image,
                command: CONTAINER_COMMANDS.migrations,
                serviceAccountName: SERVICE_ACCOUNTS.migrations,
                env: env.migrations,
                resources: MIGRATIONS_RESOURCES,
                placement: placement.migrations,
                tmpSizeLimit: '64Mi',
                restartPolicy: 'Never',
              }),
            },
          },
        },
        // Pulumi waits for the Job to complete; the Deployments wait for it in turn.
        kube([accounts.migrations, ...env.migrations.resources]),
      );
    }

    /**
     * A service's Deployment: no replicas (its autoscaler owns the count; the first rollout
     * starts one pod), surge-only rollouts, the hardened pod on the role's image entry point,
     * service account, env and pool, probes on the contract's paths at `port`. After the
     * migrations Job, so a new image never runs against an old schema.
     */
    function createDeployment(
      role: 'api' | 'worker',
      s: {
        resources: ResourceSpec;
        tmpSizeLimit: string;
        port: { name: string; containerPort: number };
        shutdown: ShutdownTiming;
        progressDeadlineSeconds: number;
        minReadySeconds?: number;
        kubernetesApiToken?: boolean;
        fieldEnv?: Readonly<Record<string, string>>;
      },
    ): k8s.apps.v1.Deployment {
      const probe = (path: string) => ({ port: s.port.name, path });
      return new k8s.apps.v1.Deployment(
        `${name}-${role}`,
        {
          metadata: meta(role, role),
          spec: {
            selector: { matchLabels: selectorLabels(role) },
            strategy: ROLLING_UPDATE,
            revisionHistoryLimit: 5,
            progressDeadlineSeconds: s.progressDeadlineSeconds,
            ...(s.minReadySeconds !== undefined ? { minReadySeconds: s.minReadySeconds } : {}),
            template: {
              metadata: { labels: podLabels(role) },
              spec: hardenedPodSpec({
                role,
                image: args.image,
                command: CONTAINER_COMMANDS[role],
                serviceAccountName: SERVICE_ACCOUNTS[role],
                env: env[role],
                ...(s.fieldEnv ? { fieldEnv: s.fieldEnv } : {}),
                resources: s.resources,
                placement: placement[role],
                tmpSizeLimit: s.tmpSizeLimit,
                ports: [s.port],
                probes: { startup: probe(PATHS.healthz), readiness: probe(PATHS.readyz), liveness: probe(PATHS.healthz) },
                shutdown: s.shutdown,
                zoneSpread,
                ...(s.kubernetesApiToken ? { kubernetesApiToken: true } : {}),
              }),
            },
          },
        },
        kube([migrations, accounts[role], ...env[role].resources]),
      );
    }

    function createApi(): { deployment: k8s.apps.v1.Deployment; service: k8s.core.v1.Service } {
      const deployment = createDeployment('api', {
        resources: args.api.resources,
        tmpSizeLimit: '256Mi',
        // The port the ALB sends to and the ServiceMonitor scrapes, by the contract's name.
        port: { name: SCRAPE_TARGETS.api.portName, containerPort: SCRAPE_TARGETS.api.port },
        shutdown: { preStopSeconds: API_PRE_STOP_SECONDS, drainSeconds: apiGraceSeconds, closeSeconds: CLOSE_SECONDS.api },
        progressDeadlineSeconds: 600,
        minReadySeconds: 5,
        // `platform doctor --stack` runs here and reads the cluster as this service account.
        kubernetesApiToken: true,
      });
      const service = new k8s.core.v1.Service(
        `${name}-api-service`,
        {
          metadata: meta('api', 'api'),
          spec: { type: 'ClusterIP', selector: selectorLabels('api'), ports: [{ name: SCRAPE_TARGETS.api.portName, port: 80, targetPort: SCRAPE_TARGETS.api.portName, protocol: 'TCP' }] },
        },
        kube(),
      );
      new k8s.autoscaling.v2.HorizontalPodAutoscaler(
        `${name}-api-hpa`,
        { metadata: meta('api', 'api'), spec: apiAutoscalerSpec(deployment.metadata.name, args.api.replicas, args.api.targetCpuUtilization ?? 70) },
        kube(),
      );
      return { deployment, service };
    }

    function createWorker(): k8s.apps.v1.Deployment {
      const deployment = createDeployment('worker', {
        resources: args.worker.resources,
        tmpSizeLimit: '1Gi',
        // The port the PodMonitor scrapes, by the contract's name.
        port: { name: SCRAPE_TARGETS.worker.portName, containerPort: SCRAPE_TARGETS.worker.port },
        shutdown: { preStopSeconds: WORKER_PRE_STOP_SECONDS, drainSeconds: WORKER_SHUTDOWN_GRACE_MS / 1000, closeSeconds: CLOSE_SECONDS.worker },
        // A rollout waits out each old worker's drain (the longest job's timeout).
        progressDeadlineSeconds: Math.ceil(WORKER_SHUTDOWN_GRACE_MS / 1000) + 600,
        fieldEnv: WORKER_FIELD_ENV,
      });
      const scalerSecret = new k8s.core.v1.Secret(
        `${name}-backlog-scaler-secret`,
        { metadata: meta('worker'), immutable: true, type: 'Opaque', stringData: { password: pulumi.secret(secrets.scalerPassword) } },
        kube(),
      );
      const authentication = new k8s.apiextensions.CustomResource(
        `${name}-backlog-scaler-auth`,
        {
          apiVersion: 'keda.sh/v1alpha1',
          kind: 'TriggerAuthentication',
          metadata: meta('worker', 'worker-backlog'),
          spec: { secretTargetRef: [{ parameter: 'password', name: scalerSecret.metadata.name, key: 'password' }] },
        },
        kube(),
      );
      new k8s.apiextensions.CustomResource(
        `${name}-worker-scaler`,
        {
          apiVersion: 'keda.sh/v1alpha1',
          kind: 'ScaledObject',
          metadata: meta('worker', 'worker'),
          spec: workerScaledObjectSpec(deployment.metadata.name, {
            replicas: args.worker.replicas,
            backlogPerReplica: args.worker.backlogPerReplica ?? args.worker.concurrency,
            jobsRunningPerUser: inputs.worker.jobsRunningPerUser,
            pollingIntervalSeconds: args.worker.pollingIntervalSeconds ?? 15,
            cooldownSeconds: args.worker.cooldownSeconds ?? 300,
            database: { host: args.database.address, port: args.database.port, name: args.database.name, user: roles.scalerUser },
            authenticationName: authentication.metadata.name,
          }),
        },
        // The scaler role exists once the migrations ran.
        kube([migrations]),
      );
      return deployment;
    }

    function createDisruptionBudget(role: 'api' | 'worker'): void {
      new k8s.policy.v1.PodDisruptionBudget(
        `${name}-${role}-pdb`,
        // One pod at a time may be evicted by a drain; an unhealthy one never blocks the drain.
        { metadata: meta(role, role), spec: { maxUnavailable: 1, unhealthyPodEvictionPolicy: 'AlwaysAllow', selector: { matchLabels: selectorLabels(role) } } },
        kube(),
      );
    }

    function createIngress(service: k8s.core.v1.Service): { hostname: pulumi.Output<string>; webAclArn?: pulumi.Output<string> } {
      const webAcl = args.ingress.waf ? createWebAcl(name, args.ingress.waf, own.parent) : undefined;
      const ingress = new k8s.networking.v1.Ingress(
        `${name}-api-ingress`,
        {
          metadata: {
            ...meta('api', 'api'),
            annotations: ingressAnnotations({
              domain: args.ingress.domain,
              certificateArn: args.ingress.certificateArn,
              publicSubnetIds: args.ingress.publicSubnetIds,
              loadBalancerName: args.ingress.loadBalancerName ?? defaultLoadBalancerName(),
              ...(webAcl ? { webAclArn: webAcl.arn } : {}),
            }),
          },
          spec: { ingressClassName: 'alb', rules: ingressRules(args.ingress.domain, { name: service.metadata.name, port: SCRAPE_TARGETS.api.portName }) },
        },
        kube(),
      );
      const hostname = ingress.status.apply((status) => {
        const host = status?.loadBalancer?.ingress?.[0]?.hostname;
        if (!host) throw new pulumi.ResourceError(`Workloads ${name}: the Ingress has no load balancer address; see the aws-load-balancer-controller logs in kube-system`, own.parent);
        return host;
      });
      const zone = aws.lb.getHostedZoneIdOutput({ loadBalancerType: 'application', region: args.region }, own);
      new aws.route53.Record(
        `${name}-api-dns`,
        { zoneId: args.ingress.hostedZoneId, name: args.ingress.domain, type: 'A', aliases: [{ name: hostname, zoneId: zone.id, evaluateTargetHealth: true }] },
        own,
      );
      return { hostname, ...(webAcl ? { webAclArn: webAcl.arn } : {}) };
    }
  }
}
