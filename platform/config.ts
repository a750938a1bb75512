import * as pulumi from '@pulumi/pulumi';
import { z } from 'zod';
import { DEFAULT_JOBS_RUNNING_PER_USER, MONITORING } from '../services/contract';
import { KEDA_NAMESPACE } from './cluster/keda-network-policy';
import { cidrContains, cidrsOverlap, isNonPublic } from './shared/cidr';
import { MIN_WORKER_REPLICAS, WORKER_MINIMUM_REASON } from './workloads/autoscaling';

/**
 * The stack configuration schema: every value a stack file (`Pulumi.<stack>.yaml`) may
 * set, with its default. Values live under the project namespace (`platform-kit:`) as
 * structured objects, one per concern, plus the conventional `aws:region`.
 *
 * Parsing is a pure function (`parseStackConfig`) so tests can feed it bad values; the
 * program calls `loadStackConfig()`, which reads Pulumi's config and throws a
 * `StackConfigError` whose message names the stack file and the key, e.g.
 * `Pulumi.prod.yaml: platform-kit:database.instanceClass must be an RDS instance class (db.<family>.<size>)`.
 */

export const PROJECT = 'platform-kit';

const cidr = z
  .string()
  .regex(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/, { error: 'must be an IPv4 CIDR block such as 10.0.0.0/16' })
  .refine((v) => {
    const [ip = '', bits = ''] = v.split('/');
    return ip.split('.').every((o) => Number(o) <= 255) && Number(bits) <= 32;
  }, { error: 'must be an IPv4 CIDR block with octets ≤ 255 and a prefix ≤ 32' });

/** A public allow-list entry: anything but "the whole internet". */
const allowListCidr = cidr.refine((v) => !v.endsWith('/0'), { error: 'must not be a /0 block (the allow-list exists to keep the internet out)' });

const tagValue = z.string().min(1, { error: 'must be a non-empty string' }).max(256, { error: 'must be at most 256 characters' });

const tagsSchema = z
  .object({
    /** Team that answers for the resources (tag `owner`). Required. */
    owner: tagValue,
    /** Finance cost centre the bill goes to (tag `cost-centre`). Required. */
    costCentre: tagValue,
    /** Extra tags merged into the provider's default tags. Default: none. */
    extra: z.record(z.string().regex(/^[A-Za-z0-9 _.:/=+@-]{1,128}$/, { error: 'must be a valid AWS tag key' }), tagValue).default({}),
  })
  .strict();

/** Retention values CloudWatch Logs accepts; anything else fails at `up`, not at preview. */
export const CLOUDWATCH_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;
const cloudWatchRetention = z
  .number()
  .int()
  .refine((d) => (CLOUDWATCH_RETENTION_DAYS as readonly number[]).includes(d), { error: `must be a retention CloudWatch Logs accepts (${CLOUDWATCH_RETENTION_DAYS.join(', ')})` });

const flowLogsSchema = z
  .object({
    /**
     * `s3` (default): Parquet files in the log archive bucket, read with Athena; a fraction of
     * CloudWatch's ingestion price. `cloudwatch`: a KMS-encrypted log group, for Logs Insights
     * queries and metric filters; choose it only where someone runs those.
     */
    destination: z.enum(['s3', 'cloudwatch'], { error: 'must be "s3" or "cloudwatch"' }).default('s3'),
    /** Seconds per flow record: 60 (fine-grained incident timelines, more records) or 600 (the AWS default). Default 600. */
    aggregationSeconds: z.union([z.literal(60), z.literal(600)], { error: 'must be 60 or 600' }).default(600),
    /** Days to keep flow logs: the archive's lifecycle for its `vpc-flow-logs/` folder, or the log group's retention. Default 90. */
    retentionDays: cloudWatchRetention.default(90),
  })
  .strict();

const transitGatewaySchema = z
  .object({
    /** Transit gateway the VPC attaches to (shared with this account through RAM), e.g. tgw-0a1b2c3d4e5f60718. */
    id: z.string().regex(/^tgw-[0-9a-f]{8,17}$/, { error: 'must be a transit gateway id such as tgw-0a1b2c3d4e5f60718' }),
    /** Networks behind the transit gateway (VPN, CI runners) that the private subnets route to through it. At least one. */
    routes: z.array(cidr).min(1, { error: 'must list at least one network reached through the transit gateway' }),
  })
  .strict();

const networkSchema = z
  .object({
    /** VPC CIDR. Default 10.0.0.0/16. */
    cidrBlock: cidr.default('10.0.0.0/16'),
    /** Availability zones to spread over (2 or 3), e.g. [eu-west-1a, eu-west-1b]. Required. */
    availabilityZones: z
      .array(z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$/, { error: 'must be an availability zone name such as eu-west-1a' }))
      .min(2, { error: 'must list at least 2 availability zones (RDS and EKS need two)' })
      .max(3, { error: 'must list at most 3 availability zones' })
      .refine((azs) => new Set(azs).size === azs.length, { error: 'must not repeat an availability zone' }),
    /** `single` (one NAT gateway, cheap, one AZ's egress is a single point) or `onePerAz`. Default onePerAz. */
    natGateways: z.enum(['single', 'onePerAz'], { error: 'must be "single" or "onePerAz"' }).default('onePerAz'),
    /** VPC flow logs (all traffic). Default: to S3 at 10-minute aggregation, kept 90 days. */
    flowLogs: flowLogsSchema.default(flowLogsSchema.parse({})),
    /**
     * Interface endpoints for ECR (api, dkr), STS and CloudWatch Logs, so image pulls and IRSA
     * token exchanges skip the NAT. They cost per AZ-hour: worth it where traffic is steady. Default true.
     */
    interfaceEndpoints: z.boolean().default(true),
    /**
     * Attach the VPC to a transit gateway and route `routes` through it from the private
     * subnets: how a deployer outside the VPC reaches a private Kubernetes API. Default none.
     */
    transitGateway: transitGatewaySchema.optional(),
  })
  .strict();

/** What a node group is for. `system`: cluster add-ons, monitoring, the api. `jobs`: the job workers. */
export const NODE_ROLES = ['system', 'jobs'] as const;

const nodeGroupSchema = z
  .object({
    /** Logical name of the group (lowercase, used in resource names; never rename a shipped group). */
    name: z.string().regex(/^[a-z][a-z0-9-]{1,20}$/, { error: 'must be lowercase letters, digits and dashes (2–21 chars)' }),
    /**
     * The pools the group serves: `[system]`, `[jobs]` or both. A group that serves only
     * `jobs` is tainted so nothing but job workers lands there. Required.
     */
    roles: z
      .array(z.enum(NODE_ROLES, { error: `must be one of ${NODE_ROLES.join(', ')}` }))
      .min(1, { error: 'must name the pools the group serves (system, jobs or both)' })
      .refine((r) => new Set(r).size === r.length, { error: 'must not repeat a role' }),
    /** EC2 instance types, e.g. [m6i.large]. */
    instanceTypes: z.array(z.string().regex(/^[a-z0-9-]+\.[a-z0-9]+$/, { error: 'must be an EC2 instance type such as m6i.large' })).min(1),
    /** ON_DEMAND or SPOT. Default ON_DEMAND. */
    capacityType: z.enum(['ON_DEMAND', 'SPOT'], { error: 'must be "ON_DEMAND" or "SPOT"' }).default('ON_DEMAND'),
    /** Fewest nodes; the cluster autoscaler never goes below it. */
    minSize: z.number().int().min(0),
    /** Nodes at creation. Afterwards the cluster autoscaler owns the count and `up` leaves it alone. */
    desiredSize: z.number().int().min(0),
    /** Most nodes the cluster autoscaler may run. */
    maxSize: z.number().int().min(1),
    /** Root volume size in GiB. Default 50. */
    diskSizeGiB: z.number().int().min(20).max(1000).default(50),
    /** Extra Kubernetes node labels. Default none. */
    labels: z.record(z.string(), z.string()).default({}),
    /**
     * What reads 1-minute EC2 metrics of these nodes (a CloudWatch alarm, a dashboard), e.g.
     * "ASG CPU alarm". Setting it turns detailed monitoring on (about $2 per instance-month).
     * Default unset: basic 5-minute metrics, since Prometheus already scrapes the nodes.
     */
    detailedMonitoringReader: z.string().min(3, { error: 'must say what reads the 1-minute metrics' }).optional(),
  })
  .strict()
  .refine((g) => g.minSize <= g.desiredSize && g.desiredSize <= g.maxSize, { error: 'must satisfy minSize ≤ desiredSize ≤ maxSize' });

const chartVersion = z.string().regex(/^\d+\.\d+\.\d+$/, { error: 'must be an exact chart version such as 1.2.3 (pinned, never a range)' });
const addonVersion = z
  .string()
  .regex(/^v\d+\.\d+\.\d+-eksbuild\.\d+$/, { error: 'must be an exact EKS add-on version such as v1.19.6-eksbuild.1 (aws eks describe-addon-versions)' });
const roleArn = z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/, { error: 'must be an IAM role ARN' });

const clusterSchema = z
  .object({
    /**
     * Kubernetes minor version, e.g. "1.33". Required. Bumping it upgrades, in one `up`, the
     * control plane, then vpc-cni and kube-proxy, then the node groups, then coredns and EBS
     * CSI; bump `addons.kubeProxy` and `autoscaler.imageTag` to the same minor with it.
     */
    version: z.string().regex(/^1\.\d{2}$/, { error: 'must be a Kubernetes minor version such as "1.33" (quoted in YAML)' }),
    /** EKS support tier once the version leaves standard support: STANDARD (upgrade is forced) or EXTENDED (six times the price per cluster-hour). Default STANDARD. */
    upgradePolicy: z.enum(['STANDARD', 'EXTENDED'], { error: 'must be "STANDARD" or "EXTENDED"' }).default('STANDARD'),
    /**
     * How `pulumi up` reaches the Kubernetes API to install the add-ons. Required.
     * `private`: no public endpoint; `deployerCidrs` reach the private one over
     * `platform-kit:network.transitGateway` (each must be routed there). `restricted`: a
     * public endpoint open only to `deployerCidrs`, the deployer's public egress addresses.
     */
    endpointAccess: z
      .object({
        mode: z.enum(['private', 'restricted'], { error: 'must be "private" or "restricted"' }),
        /** Networks allowed to the Kubernetes API on 443: where `pulumi up` and kubectl run from. At least one. */
        deployerCidrs: z.array(allowListCidr).min(1, { error: 'must list the networks `pulumi up` runs from (with none, nothing can install the add-ons)' }),
      })
      .strict(),
    /**
     * Who operates the cluster, through EKS access entries. Required, and neither list may
     * be empty: a cluster only its creator can reach is lost with that role.
     */
    access: z
      .object({
        /**
         * The role `pulumi up` runs as (CI assumes it). EKS makes the cluster's creator admin,
         * so it must be the identity of the first `up` and is not listed again below.
         */
        deployerRoleArn: roleArn,
        /** Roles granted cluster-admin (AmazonEKSClusterAdminPolicy), e.g. the SRE role. At least one. */
        admins: z.array(roleArn).min(1, { error: 'must list at least one role (SRE break-glass) besides the deployer' }),
        /** Roles granted read-only view (AmazonEKSViewPolicy: no Secrets), e.g. on-call and CI checks. At least one. */
        viewers: z.array(roleArn).min(1, { error: 'must list at least one read-only role' }),
      })
      .strict(),
    /** Control-plane log types sent to CloudWatch. Default all five. */
    logTypes: z
      .array(z.enum(['api', 'audit', 'authenticator', 'controllerManager', 'scheduler'], { error: 'must be one of api, audit, authenticator, controllerManager, scheduler' }))
      .min(1, { error: 'must enable at least one log type (audit logs are the minimum a platform keeps)' })
      .default(['api', 'audit', 'authenticator', 'controllerManager', 'scheduler']),
    /** Days to keep control-plane logs (a value CloudWatch accepts). Default 90. */
    logRetentionDays: cloudWatchRetention.default(90),
    /** Managed node groups. At least one; together they must serve both the system and jobs roles. */
    nodeGroups: z.array(nodeGroupSchema).min(1, { error: 'must define at least one node group' }),
    /** Refuse cluster deletion until turned off. Default true. */
    deletionProtection: z.boolean().default(true),
    /** EKS managed add-on versions, pinned (`aws eks describe-addon-versions --kubernetes-version <version>`). Required. */
    addons: z
      .object({
        vpcCni: addonVersion,
        /** Must be of the cluster's minor version. */
        kubeProxy: addonVersion,
        coredns: addonVersion,
        ebsCsiDriver: addonVersion,
      })
      .strict(),
    /** Helm chart versions, pinned. */
    charts: z
      .object({
        awsLoadBalancerController: chartVersion.default('1.13.4'),
        metricsServer: chartVersion.default('3.12.2'),
        keda: chartVersion.default('2.17.2'),
        clusterAutoscaler: chartVersion.default('9.47.0'),
      })
      .strict()
      .default({ awsLoadBalancerController: '1.13.4', metricsServer: '3.12.2', keda: '2.17.2', clusterAutoscaler: '9.47.0' }),
    /** Cluster Autoscaler. */
    autoscaler: z
      .object({
        /** Image tag, of the cluster's minor version (the autoscaler simulates that scheduler), e.g. v1.33.1. Required. */
        imageTag: z.string().regex(/^v1\.\d{2}\.\d+$/, { error: 'must be a cluster-autoscaler release such as v1.33.1' }),
      })
      .strict(),
    /**
     * AWS Load Balancer Controller integrations; each one on gets the IAM actions it calls.
     * Default both off: the controller then never calls WAFv2 or Shield.
     */
    loadBalancerController: z
      .object({
        /** Attach WAFv2 web ACLs named by Ingress annotations. Default false. */
        wafv2: z.boolean().default(false),
        /** Shield Advanced protection of the load balancers (needs a Shield Advanced subscription). Default false. */
        shield: z.boolean().default(false),
      })
      .strict()
      .default({ wafv2: false, shield: false }),
  })
  .strict();

const databaseSchema = z
  .object({
    /**
     * PostgreSQL MAJOR version, e.g. "16". Only the major is pinned: RDS applies minor
     * versions itself (autoMinorVersionUpgrade), and a pinned minor would make the next `up`
     * after such an upgrade ask for a downgrade, which RDS refuses. Major upgrades are a
     * deliberate change of this value. Default "16".
     */
    engineVersion: z
      .string()
      .regex(/^\d{2}$/, { error: 'must be a PostgreSQL major version such as "16" (RDS applies minor versions itself; a pinned minor would be downgraded by the next up)' })
      .default('16'),
    /** Instance class, e.g. db.t4g.medium. Required. */
    instanceClass: z.string().regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, { error: 'must be an RDS instance class (db.<family>.<size>)' }),
    /** Initial storage in GiB. Default 20. */
    allocatedStorageGiB: z.number().int().min(20).max(65536).default(20),
    /** Storage autoscaling ceiling in GiB. Default 100. */
    maxAllocatedStorageGiB: z.number().int().min(20).max(65536).default(100),
    /** Standby in a second AZ. Default true. */
    multiAz: z.boolean().default(true),
    /** Days of automated backups (and point-in-time recovery). Default 7. */
    backupRetentionDays: z.number().int().min(1, { error: 'must be at least 1 (0 disables backups and PITR)' }).max(35).default(7),
    /** Refuse deletion (and take a final snapshot) . Default true. */
    deletionProtection: z.boolean().default(true),
    /** Performance Insights retention in days (7 is free; longer are 31-day multiples). Default 7. */
    performanceInsightsRetentionDays: z.number().int().refine((d) => d === 7 || d === 731 || (d % 31 === 0 && d <= 713), { error: 'must be 7, a multiple of 31 up to 713, or 731' }).default(7),
    /** Days to keep the PostgreSQL logs RDS exports to CloudWatch (a value CloudWatch accepts). Default 90. */
    logRetentionDays: cloudWatchRetention.default(90),
    /** Database name created at launch. Default "platform". */
    databaseName: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, { error: 'must be a lowercase identifier' }).default('platform'),
  })
  .strict()
  .refine((d) => d.maxAllocatedStorageGiB >= d.allocatedStorageGiB, { error: 'maxAllocatedStorageGiB must be ≥ allocatedStorageGiB', path: ['maxAllocatedStorageGiB'] });

const cacheSchema = z
  .object({
    /** Redis engine version. Default "7.1". */
    engineVersion: z.string().regex(/^7\.\d$/, { error: 'must be a Redis 7 version such as "7.1" (the parameter group family is redis7)' }).default('7.1'),
    /** Node type, e.g. cache.t4g.small. Required. */
    nodeType: z.string().regex(/^cache\.[a-z0-9]+\.[a-z0-9]+$/, { error: 'must be an ElastiCache node type (cache.<family>.<size>)' }),
    /** Read replicas besides the primary. 0 means no failover. Default 1. */
    replicas: z.number().int().min(0).max(5).default(1),
    /** Days of daily snapshots. Default 7. */
    snapshotRetentionDays: z.number().int().min(0).max(35).default(7),
  })
  .strict();

const storageSchema = z
  .object({
    /** Key prefix the services write under (S3_PREFIX); IRSA grants stop at it. Default "files/". */
    objectPrefix: z.string().regex(/^[a-z0-9][a-z0-9/_-]*\/$/, { error: 'must be a key prefix ending in "/" such as files/' }).default('files/'),
    /** Days before result objects expire. Default 90. */
    resultsExpireDays: z.number().int().min(1).default(90),
    /** Days before uploaded objects expire. Default 365. */
    uploadsExpireDays: z.number().int().min(1).default(365),
    /** Days before Loki chunks expire (a backstop behind Loki's own retention). Default 90. */
    lokiChunksExpireDays: z.number().int().min(1).default(90),
    /** Days a replaced or deleted version stays recoverable. Default 30. */
    noncurrentVersionExpireDays: z.number().int().min(1).default(30),
  })
  .strict();

const registrySchema = z
  .object({
    /** Tagged images kept per repository; older ones expire. Default 50. */
    keepTaggedImages: z.number().int().min(1).max(1000).default(50),
    /** Days before untagged images expire. Default 7. */
    untaggedExpireDays: z.number().int().min(1).default(7),
  })
  .strict();

const logArchiveSchema = z
  .object({
    /** Days to keep S3 server access logs of the platform's buckets. Default 365. */
    accessLogRetentionDays: z.number().int().min(1).max(3653).default(365),
    /** Days a replaced or deleted log object stays recoverable. Default 30. */
    noncurrentVersionExpireDays: z.number().int().min(1).default(30),
  })
  .strict();

const teardownSchema = z
  .object({
    /**
     * Let `pulumi destroy` empty S3 buckets and the ECR repository instead of stopping on
     * them. For disposable stacks only: the policy pack refuses it in prod. Default false.
     */
    forceDestroy: z.boolean().default(false),
  })
  .strict();

const ingressSchema = z
  .object({
    /** Public host name of the API, e.g. api.dev.example.com. Required. */
    domain: z.string().regex(/^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, { error: 'must be a lowercase DNS name such as api.example.com' }),
    /** Route 53 hosted zone that holds the domain (for DNS validation of the certificate and the alias record). Required. */
    hostedZoneId: z.string().regex(/^Z[A-Z0-9]{6,32}$/, { error: 'must be a Route 53 hosted zone id such as Z0123456789ABCDEFGHIJ' }),
    /**
     * A WAFv2 web ACL in front of the load balancer: AWS's common, known-bad-inputs and IP
     * reputation rule groups and a per-IP rate limit. Needs `cluster.loadBalancerController.wafv2`.
     * Default off.
     */
    waf: z
      .object({
        enabled: z.boolean().default(false),
        /** Requests one client IP may send in any 5 minutes before WAF blocks it (100 to 2,000,000,000). Default 2000. */
        requestsPerFiveMinutesPerIp: z.number().int().min(100).max(2_000_000_000).default(2000),
        /** Days to keep the WAF log (a value CloudWatch accepts). Default 90. */
        logRetentionDays: cloudWatchRetention.default(90),
      })
      .strict()
      .default({ enabled: false, requestsPerFiveMinutesPerIp: 2000, logRetentionDays: 90 }),
  })
  .strict();

const cpuQuantity = z.string().regex(/^(\d+m|\d+(\.\d+)?)$/, { error: 'must be a CPU quantity such as 250m or 1' });
const memoryQuantity = z.string().regex(/^\d+(Mi|Gi)$/, { error: 'must be a memory quantity in Mi or Gi such as 512Mi' });

/** Requests per container; the memory request is also its limit (a leak is killed, never swaps a node), CPU is not limited (a limit throttles latency long before a node is busy). */
const resourcesSchema = z.object({ cpu: cpuQuantity, memory: memoryQuantity }).strict();

const replicasSchema = (min: number, defaults: { min: number; max: number }, why?: string) =>
  z
    .object({
      /** Fewest replicas, also what the autoscaler returns to. */
      min: z.number().int().min(min, why ? { error: `must be at least ${min}: ${why}` } : undefined).max(100),
      /** Most replicas the autoscaler may run. */
      max: z.number().int().min(1).max(200),
    })
    .strict()
    .refine((r) => r.min <= r.max, { error: 'must be ≤ max', path: ['min'] })
    .default(defaults);

const roleName = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, { error: 'must be a lowercase PostgreSQL role name' });

const appSchema = z
  .object({
    /** Kubernetes namespace of the api and worker. Default "platform". */
    namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, { error: 'must be a Kubernetes namespace name' }).default('platform'),
    /**
     * Spreading of api and worker replicas over zones: `required` refuses to place a replica
     * that would leave zones unbalanced (a zone outage then takes at most its share),
     * `preferred` only tries (a stack whose nodes may sit in one zone). Default preferred.
     */
    zoneSpread: z.enum(['required', 'preferred'], { error: 'must be "required" or "preferred"' }).default('preferred'),
    /** LOG_LEVEL of every service. Default info. */
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace'], { error: 'must be one of fatal, error, warn, info, debug, trace' }).default('info'),
    api: z
      .object({
        /** HorizontalPodAutoscaler bounds. Default 2 to 6 (two, so a node loss or a rollout never empties the API). */
        replicas: replicasSchema(1, { min: 2, max: 6 }),
        /** Average CPU utilisation (% of the request) the HPA holds. Default 70. */
        targetCpuUtilization: z.number().int().min(10).max(100).default(70),
        /** Per container. Default 250m CPU, 512Mi memory. */
        resources: resourcesSchema.default({ cpu: '250m', memory: '512Mi' }),
        /** How long SIGTERM waits for in-flight requests (SHUTDOWN_GRACE_MS). Default 25. */
        shutdownGraceSeconds: z.number().int().min(5).max(300).default(25),
      })
      .strict()
      .default({ replicas: { min: 2, max: 6 }, targetCpuUtilization: 70, resources: { cpu: '250m', memory: '512Mi' }, shutdownGraceSeconds: 25 }),
    worker: z
      .object({
        /**
         * KEDA ScaledObject bounds. Default 1 to 10. `min` is at least 1 in every stack: the
         * worker is what Prometheus scrapes for the backlog, dead-letter, PostgreSQL and
         * Redis metrics and what `platform doctor` sees heartbeats from, so a fleet scaled to
         * zero would page WorkerAbsent and blind the alerts that read those metrics.
         */
        replicas: replicasSchema(MIN_WORKER_REPLICAS, { min: 1, max: 10 }, WORKER_MINIMUM_REASON),
        /** Jobs one worker runs at once (WORKER_CONCURRENCY). Default 50. */
        concurrency: z.number().int().min(1).max(1000).default(50),
        /**
         * Jobs of one user running at once across the whole fleet (JOBS_RUNNING_PER_USER), so
         * one user's long jobs leave slots to the others. Default 50: one replica's worth at
         * the default concurrency.
         */
        jobsRunningPerUser: z.number().int().min(1).max(100_000).default(DEFAULT_JOBS_RUNNING_PER_USER),
        /** Jobs queued or running per worker replica that KEDA aims for. Default: the concurrency (every slot busy, nothing waiting). */
        backlogPerReplica: z.number().int().min(1).optional(),
        /** Seconds between KEDA's backlog queries. Default 15. */
        pollingIntervalSeconds: z.number().int().min(5).max(300).default(15),
        /** Seconds without backlog before KEDA scales to the minimum. Default 300. */
        cooldownSeconds: z.number().int().min(30).max(3600).default(300),
        /** Per container. Default 500m CPU, 1Gi memory. */
        resources: resourcesSchema.default({ cpu: '500m', memory: '1Gi' }),
      })
      .strict()
      .default({ replicas: { min: 1, max: 10 }, concurrency: 50, jobsRunningPerUser: DEFAULT_JOBS_RUNNING_PER_USER, pollingIntervalSeconds: 15, cooldownSeconds: 300, resources: { cpu: '500m', memory: '1Gi' } }),
    /** PostgreSQL login roles the migrations Job creates or updates. Defaults platform_app and platform_scaler. */
    database: z
      .object({
        /** What the api and worker connect as (rows of the platform's tables, no DDL). */
        appUser: roleName.default('platform_app'),
        /** What KEDA connects as to count the backlog (jobs.status only). */
        scalerUser: roleName.default('platform_scaler'),
      })
      .strict()
      .refine((d) => d.appUser !== d.scalerUser, { error: 'appUser and scalerUser must differ', path: ['scalerUser'] })
      .default({ appUser: 'platform_app', scalerUser: 'platform_scaler' }),
  })
  .strict();

/**
 * The monitoring stack. Where it runs is not configured here: Prometheus, Alertmanager,
 * Grafana and Loki run on the system pool (the node groups whose `roles` include `system`)
 * and the node agents on every node, as the cluster's placement says. Required.
 */
const observabilitySchema = z
  .object({
    /** Where the runbooks are published; alerts link to `<base>/<AlertName>.md`. */
    runbookBaseUrl: z.string().regex(/^https:\/\/[^\s]+[^/\s]$/, { error: 'must be an https URL without a trailing slash' }).default('https://github.com/platform-kit/platform-kit/blob/main/runbooks'),
    prometheus: z
      .object({
        /** Prometheus replicas (each scrapes everything). Default 1. */
        replicas: z.number().int().min(1).max(3).default(1),
        /** Days of metrics kept. Default 15 (the SLO ticket window needs 3). */
        retentionDays: z.number().int().min(4, { error: 'must be at least 4 (the slowest burn-rate alert reads 3 days)' }).max(90).default(15),
        /** Persistent volume per replica, GiB. Default 50. */
        storageGiB: z.number().int().min(10).max(1000).default(50),
        /** Memory request per replica, MiB (also its limit). Default 2048. */
        memoryMiB: z.number().int().min(512).max(65536).default(2048),
      })
      .strict()
      .default({ replicas: 1, retentionDays: 15, storageGiB: 50, memoryMiB: 2048 }),
    alertmanager: z
      .object({
        /** Alertmanager replicas (they gossip, so a page survives losing one). Default 1. */
        replicas: z.number().int().min(1).max(5).default(1),
      })
      .strict()
      .default({ replicas: 1 }),
    grafana: z
      .object({
        /**
         * Public access through the ALB, behind OIDC at the load balancer (client secret in the
         * secret config key platform-kit:grafanaOidcClientSecret). Default none: reach Grafana by port-forward.
         */
        ingress: z
          .object({
            host: z.string().regex(/^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, { error: 'must be a lowercase DNS name' }),
            certificateArn: z.string().regex(/^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[A-Za-z0-9-]+$/, { error: 'must be an ACM certificate ARN' }),
            oidc: z
              .object({
                issuer: z.string().url(),
                authorizationEndpoint: z.string().url(),
                tokenEndpoint: z.string().url(),
                userInfoEndpoint: z.string().url(),
                clientId: z.string().min(1),
              })
              .strict(),
          })
          .strict()
          .optional(),
      })
      .strict()
      .default({}),
    loki: z
      .object({
        /** `filesystem` (one replica on a volume) or `s3` (the loki-chunks bucket, replicas share it). */
        storage: z.enum(['filesystem', 's3'], { error: 'must be "filesystem" or "s3"' }),
        /** Single-binary replicas. Default 1. */
        replicas: z.number().int().min(1).max(5).default(1),
        /** Days of logs kept; must not exceed storage.lokiChunksExpireDays. Default 14. */
        retentionDays: z.number().int().min(1).max(365).default(14),
        /** Volume per replica (WAL, and the chunks in filesystem mode), GiB. Default 20. */
        storageGiB: z.number().int().min(5).max(1000).default(20),
        /** Memory request per replica, MiB (also its limit). Default 1024. */
        memoryMiB: z.number().int().min(256).max(65536).default(1024),
      })
      .strict(),
    alerting: z
      .object({
        /** Slack channels (webhook URL in the secret key platform-kit:alertSlackWebhookUrl). Default none. */
        slack: z.object({ pageChannel: z.string().regex(/^#[a-z0-9._-]+$/), ticketChannel: z.string().regex(/^#[a-z0-9._-]+$/) }).strict().optional(),
        /** Page through PagerDuty (routing key in the secret key platform-kit:alertPagerDutyRoutingKey). Default false. */
        pagerDuty: z.boolean().default(false),
      })
      .strict()
      .default({ pagerDuty: false }),
    /** Helm chart versions, pinned. */
    charts: z
      .object({
        kubePrometheusStack: chartVersion.default('88.5.3'),
        prometheusOperatorCrds: chartVersion.default('31.0.1'),
        loki: chartVersion.default('7.3.0'),
        alloy: chartVersion.default('1.11.1'),
      })
      .strict()
      .default({ kubePrometheusStack: '88.5.3', prometheusOperatorCrds: '31.0.1', loki: '7.3.0', alloy: '1.11.1' }),
  })
  .strict();

const StackConfigBase = z
  .object({
    region: z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, { error: 'must be an AWS region such as eu-west-1' }),
    tags: tagsSchema,
    network: networkSchema,
    cluster: clusterSchema,
    database: databaseSchema,
    cache: cacheSchema,
    storage: storageSchema.default(storageSchema.parse({})),
    registry: registrySchema.default(registrySchema.parse({})),
    logArchive: logArchiveSchema.default(logArchiveSchema.parse({})),
    teardown: teardownSchema.default(teardownSchema.parse({})),
    ingress: ingressSchema,
    app: appSchema.default(appSchema.parse({})),
    observability: observabilitySchema,
  })
  .strict();

export const StackConfigSchema = StackConfigBase.superRefine((c, ctx) => {
  for (const [i, az] of c.network.availabilityZones.entries()) {
    if (!az.startsWith(c.region)) ctx.addIssue({ code: 'custom', path: ['network', 'availabilityZones', i], message: `must be a zone of ${c.region} (aws:region)` });
  }
  const names = c.cluster.nodeGroups.map((g) => g.name);
  if (new Set(names).size !== names.length) ctx.addIssue({ code: 'custom', path: ['cluster', 'nodeGroups'], message: 'must not repeat a node group name' });
  for (const role of NODE_ROLES) {
    if (!c.cluster.nodeGroups.some((g) => g.roles.includes(role))) {
      ctx.addIssue({ code: 'custom', path: ['cluster', 'nodeGroups'], message: `must include a group serving the ${role} role (${role === 'jobs' ? 'job workers select it' : 'cluster add-ons and the monitoring stack select it'})` });
    }
  }
  versionSkew(c, ctx);
  deployPath(c, ctx);
  accessEntries(c, ctx);
  if (c.ingress.waf.enabled && !c.cluster.loadBalancerController.wafv2) {
    ctx.addIssue({ code: 'custom', path: ['ingress', 'waf', 'enabled'], message: 'needs platform-kit:cluster.loadBalancerController.wafv2: true (the controller attaches the web ACL and needs the IAM for it)' });
  }
  const owner = namespaceOwners[c.app.namespace];
  if (owner) ctx.addIssue({ code: 'custom', path: ['app', 'namespace'], message: `must not be ${c.app.namespace}, which ${owner}: the workloads create and own their namespace` });
  if ([c.app.database.appUser, c.app.database.scalerUser].includes('platform_admin')) {
    ctx.addIssue({ code: 'custom', path: ['app', 'database'], message: 'must not name the master user (platform_admin): the services never connect as it' });
  }
  observability(c, ctx);
});

/** Namespaces something else creates, so the app cannot have them. */
const namespaceOwners: Readonly<Record<string, string>> = {
  [MONITORING.namespace]: 'the monitoring stack owns',
  [MONITORING.nodeAgentsNamespace]: 'the monitoring stack owns',
  [KEDA_NAMESPACE]: 'KEDA owns',
  default: 'every cluster has',
  'kube-system': 'every cluster has',
  'kube-public': 'every cluster has',
  'kube-node-lease': 'every cluster has',
};

/** Versions that must move with `cluster.version`, or the upgrade it starts cannot finish. */
function versionSkew(c: z.infer<typeof StackConfigBase>, ctx: z.RefinementCtx): void {
  const minor = c.cluster.version;
  if (!c.cluster.addons.kubeProxy.startsWith(`v${minor}.`)) {
    ctx.addIssue({ code: 'custom', path: ['cluster', 'addons', 'kubeProxy'], message: `must be a kube-proxy build of Kubernetes ${minor} (platform-kit:cluster.version), e.g. v${minor}.0-eksbuild.1` });
  }
  if (!c.cluster.autoscaler.imageTag.startsWith(`v${minor}.`)) {
    ctx.addIssue({ code: 'custom', path: ['cluster', 'autoscaler', 'imageTag'], message: `must be a cluster-autoscaler release for Kubernetes ${minor} (platform-kit:cluster.version), e.g. v${minor}.0` });
  }
}

/** The Kubernetes API must be reachable from where `pulumi up` runs, on the very first `up`. */
function deployPath(c: z.infer<typeof StackConfigBase>, ctx: z.RefinementCtx): void {
  const { mode, deployerCidrs } = c.cluster.endpointAccess;
  const tgw = c.network.transitGateway;
  for (const [i, block] of deployerCidrs.entries()) {
    const path = ['cluster', 'endpointAccess', 'deployerCidrs', i];
    if (mode === 'restricted' && isNonPublic(block)) {
      ctx.addIssue({ code: 'custom', path, message: `${block} is a private range: a public endpoint only ever sees the deployer's public (NAT) address; list that, or use mode private` });
    }
    if (mode !== 'private') continue;
    if (cidrsOverlap(block, c.network.cidrBlock)) {
      ctx.addIssue({ code: 'custom', path, message: `${block} lies in the VPC (platform-kit:network.cidrBlock ${c.network.cidrBlock}), which does not exist before the first up; deploy from a network routed to it` });
    } else if (!tgw?.routes.some((route) => cidrContains(route, block))) {
      ctx.addIssue({
        code: 'custom',
        path,
        message: `${block} is not routed to the VPC, so a private endpoint is unreachable from it: add platform-kit:network.transitGateway with a route covering it, or use mode restricted`,
      });
    }
  }
  for (const [i, route] of (tgw?.routes ?? []).entries()) {
    if (cidrsOverlap(route, c.network.cidrBlock)) {
      ctx.addIssue({ code: 'custom', path: ['network', 'transitGateway', 'routes', i], message: `${route} overlaps the VPC (${c.network.cidrBlock}); a route cannot be more specific than the VPC's local route` });
    }
  }
}

/** One access entry per principal: EKS refuses a second one, and already holds the creator's. */
function accessEntries(c: z.infer<typeof StackConfigBase>, ctx: z.RefinementCtx): void {
  const { deployerRoleArn, admins, viewers } = c.cluster.access;
  const seen = new Set<string>([deployerRoleArn]);
  for (const [list, arns] of [['admins', admins], ['viewers', viewers]] as const) {
    for (const [i, arn] of arns.entries()) {
      if (arn === deployerRoleArn) {
        ctx.addIssue({ code: 'custom', path: ['cluster', 'access', list, i], message: 'is the deployer role, which EKS already makes admin as the cluster creator; a second access entry for it fails' });
      } else if (seen.has(arn)) {
        ctx.addIssue({ code: 'custom', path: ['cluster', 'access', list, i], message: 'is listed twice; a role gets one access entry' });
      }
      seen.add(arn);
    }
  }
}

/** Loki's retention fits its bucket's expiry, and replicas have storage they can share. */
function observability(c: z.infer<typeof StackConfigBase>, ctx: z.RefinementCtx): void {
  const { loki } = c.observability;
  if (loki.retentionDays > c.storage.lokiChunksExpireDays) {
    ctx.addIssue({ code: 'custom', path: ['observability', 'loki', 'retentionDays'], message: `must not exceed storage.lokiChunksExpireDays (${c.storage.lokiChunksExpireDays}): the bucket would expire chunks Loki still indexes` });
  }
  if (loki.storage === 'filesystem' && loki.replicas > 1) ctx.addIssue({ code: 'custom', path: ['observability', 'loki', 'replicas'], message: 'must be 1 with filesystem storage (replicas cannot share a volume); use storage s3' });
}

export type StackConfig = z.infer<typeof StackConfigSchema>;
export type NodeGroupConfig = StackConfig['cluster']['nodeGroups'][number];

/** The structured keys under `platform-kit:`; anything else in the namespace is a typo. */
export const PROJECT_KEYS = ['tags', 'network', 'cluster', 'database', 'cache', 'storage', 'registry', 'logArchive', 'teardown', 'ingress', 'app', 'observability'] as const;

/**
 * Secret keys under `platform-kit:`, set with `pulumi config set --secret`. They are never
 * parsed with the rest: the components read them with `getSecret`, so they stay secrets.
 */
export const SECRET_KEYS = ['alertSlackWebhookUrl', 'alertPagerDutyRoutingKey', 'grafanaOidcClientSecret'] as const;
export type SecretKey = (typeof SECRET_KEYS)[number];

const SECRET_FORMATS: Record<SecretKey, { pattern: RegExp; expected: string }> = {
  alertSlackWebhookUrl: { pattern: /^https:\/\/[^\s/]+\/\S+$/, expected: 'an https webhook URL' },
  alertPagerDutyRoutingKey: { pattern: /^[A-Za-z0-9]{32}$/, expected: 'a 32-character PagerDuty Events API v2 integration key' },
  grafanaOidcClientSecret: { pattern: /^\S{8,}$/, expected: 'at least 8 characters without spaces' },
};

/** The problem with a secret value, naming the key but never echoing the value; undefined when it is fine. Pure. */
export function secretProblem(key: SecretKey, value: string, stack: string): string | undefined {
  const format = SECRET_FORMATS[key];
  return format.pattern.test(value) ? undefined : `Pulumi.${stack}.yaml: ${PROJECT}:${key} must be ${format.expected} (the value is secret and not shown)`;
}

/**
 * A secret stack value, or undefined when the stack does not set it. It stays an Output
 * marked secret; its format is checked inside, so a bad value fails the update naming the key.
 */
export function stackSecret(key: SecretKey): pulumi.Output<string> | undefined {
  const stack = pulumi.getStack();
  return new pulumi.Config(PROJECT).getSecret(key)?.apply((value) => {
    const problem = secretProblem(key, value, stack);
    if (problem) throw new StackConfigError(problem);
    return value;
  });
}

export class StackConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}

/** `['database','instanceClass']` → `platform-kit:database.instanceClass`; `region` → `aws:region`. */
export function configKeyName(path: readonly PropertyKey[]): string {
  if (path.length === 0) return `${PROJECT}:<root>`;
  const [head, ...rest] = path;
  if (head === 'region') return 'aws:region';
  let key = `${PROJECT}:${String(head)}`;
  for (const p of rest) key += typeof p === 'number' ? `[${p}]` : `.${String(p)}`;
  return key;
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = raw;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

function describeIssue(issue: z.core.$ZodIssue, raw: unknown): { path: readonly PropertyKey[]; text: string } {
  switch (issue.code) {
    case 'invalid_type':
      if (valueAt(raw, issue.path) == null) return { path: issue.path, text: 'is required' };
      return { path: issue.path, text: `must be ${issue.expected === 'int' ? 'an integer' : `a ${issue.expected}`}` };
    case 'unrecognized_keys':
      return { path: [...issue.path, issue.keys[0] ?? '?'], text: `is not a known key (known: ${Object.keys(knownKeysAt(issue.path)).join(', ')})` };
    case 'too_small':
      return { path: issue.path, text: issue.message.startsWith('Too small') ? `must be ≥ ${String(issue.minimum)}` : issue.message };
    case 'too_big':
      return { path: issue.path, text: issue.message.startsWith('Too big') ? `must be ≤ ${String(issue.maximum)}` : issue.message };
    default:
      return { path: issue.path, text: issue.message };
  }
}

/** The known keys of the schema object at a path, for a helpful "did you mean" list. */
function knownKeysAt(path: readonly PropertyKey[]): Record<string, unknown> {
  let schema: z.core.$ZodType = StackConfigSchema;
  for (const p of path) {
    const def = unwrap(schema);
    if (def instanceof z.ZodObject) schema = (def.shape as Record<string, z.core.$ZodType>)[String(p)] ?? def;
    else if (def instanceof z.ZodArray) schema = def.element as z.core.$ZodType;
  }
  const obj = unwrap(schema);
  return obj instanceof z.ZodObject ? (obj.shape as Record<string, unknown>) : {};
}

function unwrap(schema: z.core.$ZodType): z.core.$ZodType {
  let s = schema;
  for (;;) {
    if (s instanceof z.ZodDefault || s instanceof z.ZodOptional) s = s.unwrap() as z.core.$ZodType;
    else if (s instanceof z.ZodPipe) s = s.in as z.core.$ZodType;
    else return s;
  }
}

/**
 * Validate raw stack config (`{ region, tags: {...}, network: {...}, ... }`, as parsed from
 * the stack file). Throws a `StackConfigError` listing every problem, each naming its key.
 */
export function parseStackConfig(raw: Record<string, unknown>, stack: string): StackConfig {
  const file = `Pulumi.${stack}.yaml`;
  const result = StackConfigSchema.safeParse(raw);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const { path, text } = describeIssue(issue, raw);
    return `${file}: ${configKeyName(path)} ${text}`;
  });
  throw new StackConfigError(lines.join('\n'));
}

/**
 * Read the stack's configuration through Pulumi (the same under the CLI and under mocks)
 * and validate it. Must be called before any resource is created so that a bad value
 * fails the preview with nothing half-built.
 */
export function loadStackConfig(): StackConfig {
  const stack = pulumi.getStack();
  const file = `Pulumi.${stack}.yaml`;
  const raw: Record<string, unknown> = {};
  const region = new pulumi.Config('aws').get('region');
  if (region !== undefined) raw.region = region;

  const all = pulumi.runtime.allConfig();
  for (const fullKey of Object.keys(all)) {
    if (!fullKey.startsWith(`${PROJECT}:`)) continue;
    const key = fullKey.slice(PROJECT.length + 1);
    if ((SECRET_KEYS as readonly string[]).includes(key)) continue;
    if (!(PROJECT_KEYS as readonly string[]).includes(key)) {
      throw new StackConfigError(`${file}: ${fullKey} is not a known key (known: ${PROJECT_KEYS.map((k) => `${PROJECT}:${k}`).join(', ')})`);
    }
    const text = all[fullKey] ?? '';
    try {
      raw[key] = JSON.parse(text);
    } catch {
      throw new StackConfigError(`${file}: ${fullKey} must be a YAML mapping (structured config), got ${JSON.stringify(text)}`);
    }
  }
  return parseStackConfig(raw, stack);
}
