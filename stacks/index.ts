import * as path from 'node:path';
import * as awsSdk from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { Cache } from '../platform/cache';
import { Certificate } from '../platform/certificate';
import { amiTypeFor, Cluster } from '../platform/cluster';
import { PROJECT, StackConfigError, loadStackConfig, stackSecret } from '../platform/config';
import { Database } from '../platform/database';
import { Identity } from '../platform/identity';
import { LOG_FOLDERS, LogArchive } from '../platform/log-archive';
import { Network } from '../platform/network';
import { Observability, renderAlerting } from '../platform/observability';
import { Registry } from '../platform/registry';
import { type ImagePlatform, ServiceImage } from '../platform/registry/image';
import { Storage } from '../platform/storage';
import { createAwsProvider } from '../platform/tags';
import { SERVICE_ACCOUNTS, Workloads } from '../platform/workloads';

/**
 * The Pulumi program: read and validate the stack's config (before anything exists, so a
 * bad value fails the preview with nothing half-built), then compose the foundation.
 * Component logical names are part of every child's URN: renaming one replaces its cloud
 * resources.
 */
const stack = pulumi.getStack();
const cfg = loadStackConfig();
const name = `${PROJECT}-${stack}`;

const aws = createAwsProvider('aws', cfg, stack);
const opts: pulumi.ComponentResourceOptions = { providers: { aws } };

const flowLogsToS3 = cfg.network.flowLogs.destination === 's3';

const logArchive = new LogArchive(
  'log-archive',
  {
    bucketPrefix: name,
    retentionDays: { s3Access: cfg.logArchive.accessLogRetentionDays, ...(flowLogsToS3 ? { vpcFlowLogs: cfg.network.flowLogs.retentionDays } : {}) },
    noncurrentVersionExpireDays: cfg.logArchive.noncurrentVersionExpireDays,
    forceDestroy: cfg.teardown.forceDestroy,
  },
  opts,
);

const network = new Network(
  'network',
  {
    region: cfg.region,
    cidrBlock: cfg.network.cidrBlock,
    availabilityZones: cfg.network.availabilityZones,
    natGateways: cfg.network.natGateways,
    flowLogs: {
      destination: flowLogsToS3
        ? { type: 's3', folderArn: logArchive.folderArn('vpcFlowLogs'), after: logArchive.ready }
        : { type: 'cloudwatch', retentionDays: cfg.network.flowLogs.retentionDays },
      aggregationSeconds: cfg.network.flowLogs.aggregationSeconds,
    },
    interfaceEndpoints: cfg.network.interfaceEndpoints,
    ...(cfg.network.transitGateway ? { transitGateway: cfg.network.transitGateway } : {}),
  },
  opts,
);

const cluster = new Cluster(
  'cluster',
  {
    region: cfg.region,
    clusterName: name,
    vpcId: network.vpcId,
    vpcCidrBlock: network.cidrBlock,
    privateSubnetIds: network.privateSubnetIds,
    version: cfg.cluster.version,
    upgradePolicy: cfg.cluster.upgradePolicy,
    endpointAccess: cfg.cluster.endpointAccess,
    // A private endpoint is reached over the transit gateway: its routes come first.
    apiReachableAfter: network.transitGatewayPath,
    access: cfg.cluster.access,
    logTypes: cfg.cluster.logTypes,
    logRetentionDays: cfg.cluster.logRetentionDays,
    nodeGroups: cfg.cluster.nodeGroups,
    deletionProtection: cfg.cluster.deletionProtection,
    addons: cfg.cluster.addons,
    charts: cfg.cluster.charts,
    autoscalerImageTag: cfg.cluster.autoscaler.imageTag,
    loadBalancerController: cfg.cluster.loadBalancerController,
  },
  opts,
);

// Nodes and pods share the EKS cluster security group, so it is the one source the data tier admits.
const fromCluster = { 'eks-cluster': cluster.clusterSecurityGroupId };

const database = new Database(
  'database',
  {
    vpcId: network.vpcId,
    subnetIds: network.privateSubnetIds,
    allowedSecurityGroups: fromCluster,
    engineVersion: cfg.database.engineVersion,
    instanceClass: cfg.database.instanceClass,
    allocatedStorageGiB: cfg.database.allocatedStorageGiB,
    maxAllocatedStorageGiB: cfg.database.maxAllocatedStorageGiB,
    multiAz: cfg.database.multiAz,
    backupRetentionDays: cfg.database.backupRetentionDays,
    deletionProtection: cfg.database.deletionProtection,
    performanceInsightsRetentionDays: cfg.database.performanceInsightsRetentionDays,
    logRetentionDays: cfg.database.logRetentionDays,
    databaseName: cfg.database.databaseName,
  },
  opts,
);

const cache = new Cache(
  'cache',
  {
    vpcId: network.vpcId,
    subnetIds: network.privateSubnetIds,
    allowedSecurityGroups: fromCluster,
    engineVersion: cfg.cache.engineVersion,
    nodeType: cfg.cache.nodeType,
    replicas: cfg.cache.replicas,
    snapshotRetentionDays: cfg.cache.snapshotRetentionDays,
  },
  opts,
);

const storage = new Storage(
  'storage',
  {
    bucketPrefix: name,
    noncurrentVersionExpireDays: cfg.storage.noncurrentVersionExpireDays,
    accessLogs: { bucketName: logArchive.bucketName, prefix: `${LOG_FOLDERS.s3Access}/`, after: logArchive.ready },
    forceDestroy: cfg.teardown.forceDestroy,
    buckets: {
      uploads: { expireDays: cfg.storage.uploadsExpireDays },
      results: { expireDays: cfg.storage.resultsExpireDays },
      'loki-chunks': { expireDays: cfg.storage.lokiChunksExpireDays },
    },
  },
  opts,
);

const registry = new Registry(
  'registry',
  {
    repositoryName: `${PROJECT}/${stack}/app`,
    keepTaggedImages: cfg.registry.keepTaggedImages,
    untaggedExpireDays: cfg.registry.untaggedExpireDays,
    forceDelete: cfg.teardown.forceDestroy,
  },
  opts,
);

const identity = new Identity(
  'identity',
  {
    oidc: { providerArn: cluster.oidcProviderArn, issuer: cluster.oidcIssuer },
    namespace: cfg.app.namespace,
    buckets: storage.buckets,
    bucketKeyArn: storage.kmsKeyArn,
    objectPrefix: cfg.storage.objectPrefix,
    workloads: {
      // The api stores and serves uploads, serves results, and deletes what an owner removes
      // (and an upload whose row could not be written).
      api: { serviceAccount: SERVICE_ACCOUNTS.api, buckets: { uploads: ['read', 'write', 'delete'], results: ['read', 'delete'] } },
      // The worker reads inputs and writes results, deleting an output a re-run replaced.
      worker: { serviceAccount: SERVICE_ACCOUNTS.worker, buckets: { uploads: ['read'], results: ['read', 'write', 'delete'] } },
    },
  },
  opts,
);

const certificate = new Certificate('ingress-certificate', { domain: cfg.ingress.domain, hostedZoneId: cfg.ingress.hostedZoneId }, opts);

// Monitoring: its plain settings render the rules and routing; receiver credentials and the
// Grafana OIDC client secret are read as secrets and handed over unopened.
const obs = cfg.observability;
const alertingSecrets = { slackWebhookUrl: stackSecret('alertSlackWebhookUrl'), pagerDutyRoutingKey: stackSecret('alertPagerDutyRoutingKey') };
const alerting = renderAlerting(obs, new Set(Object.entries({ alertSlackWebhookUrl: alertingSecrets.slackWebhookUrl, alertPagerDutyRoutingKey: alertingSecrets.pagerDutyRoutingKey }).filter(([, v]) => v !== undefined).map(([k]) => k)));
for (const warning of alerting.warnings) pulumi.log.warn(`Pulumi.${stack}.yaml: ${warning}`);
const grafanaIngress = obs.grafana.ingress;
const grafanaClientSecret = stackSecret('grafanaOidcClientSecret');
if (grafanaIngress && grafanaClientSecret === undefined) {
  throw new StackConfigError(`Pulumi.${stack}.yaml: platform-kit:grafanaOidcClientSecret is required when observability.grafana.ingress is set: pulumi config set --secret platform-kit:grafanaOidcClientSecret <secret>`);
}
const lokiBucket = storage.buckets['loki-chunks'];
if (obs.loki.storage === 's3' && !lokiBucket) throw new Error('storage has no loki-chunks bucket');

const bucket = (role: string) => {
  const b = storage.buckets[role];
  if (!b) throw new Error(`storage has no ${role} bucket`);
  return b.name;
};

const roleArn = (workload: string) => {
  const arn = identity.roleArns[workload];
  if (!arn) throw new Error(`identity has no ${workload} role`);
  return arn;
};

// Built for every CPU architecture the node groups run, so a pod lands on any of them.
const imagePlatforms = [...new Set(cfg.cluster.nodeGroups.map((g): ImagePlatform => (amiTypeFor(g.instanceTypes).includes('ARM') ? 'linux/arm64' : 'linux/amd64')))];
const image = new ServiceImage('image', { repositoryUrl: registry.repositoryUrl, contextDir: path.join(__dirname, '..'), platforms: imagePlatforms }, opts);

// The ALB's nodes sit in the public subnets; the api admits the internet's traffic from there only.
const loadBalancerCidrs = network.publicSubnetIds.apply((ids) => pulumi.all(ids.map((id) => awsSdk.ec2.getSubnetOutput({ id }, { provider: aws }).cidrBlock)));

const workloads = new Workloads(
  'workloads',
  {
    namespace: cfg.app.namespace,
    provider: cluster.provider,
    after: cluster.ready,
    image: image.imageRef,
    roleArns: { api: roleArn('api'), worker: roleArn('worker') },
    region: cfg.region,
    database: { address: database.address, port: database.port, name: database.databaseName, owner: { user: database.username, password: database.password } },
    databaseRoles: cfg.app.database,
    redisUrl: cache.connectionUrl,
    buckets: { uploads: bucket('uploads'), results: bucket('results') },
    objectPrefix: cfg.storage.objectPrefix,
    logLevel: cfg.app.logLevel,
    api: cfg.app.api,
    worker: cfg.app.worker,
    zoneSpread: cfg.app.zoneSpread,
    ingress: {
      domain: cfg.ingress.domain,
      hostedZoneId: cfg.ingress.hostedZoneId,
      certificateArn: certificate.certificateArn,
      publicSubnetIds: network.publicSubnetIds,
      loadBalancerCidrs,
      ...(cfg.ingress.waf.enabled ? { waf: { requestsPerFiveMinutesPerIp: cfg.ingress.waf.requestsPerFiveMinutesPerIp, logRetentionDays: cfg.ingress.waf.logRetentionDays } } : {}),
    },
    vpcCidrBlock: cfg.network.cidrBlock,
    // Prometheus scrapes from the contract's monitoring namespace (the default); the api, like the monitoring stack, on the system pool.
    placement: { api: cluster.placement.system, worker: cluster.placement.jobs, migrations: cluster.placement.system },
  },
  opts,
);

const observability = new Observability(
  'observability',
  {
    stack,
    provider: cluster.provider,
    ready: cluster.ready,
    appNamespace: cfg.app.namespace,
    vpcCidr: cfg.network.cidrBlock,
    // The monitoring stack on the system pool; its node agents on every node.
    placement: cluster.placement.system,
    runbookBaseUrl: obs.runbookBaseUrl,
    prometheus: obs.prometheus,
    alertmanagerReplicas: obs.alertmanager.replicas,
    alerting: {
      ...alerting.routing,
      ...(alerting.routing.slack ? { slackWebhookUrl: alertingSecrets.slackWebhookUrl } : {}),
      ...(alerting.routing.pagerDuty ? { pagerDutyRoutingKey: alertingSecrets.pagerDutyRoutingKey } : {}),
    },
    // Grafana's ALB, when published, sits behind the api's web ACL where the stack has one.
    grafana: grafanaIngress && grafanaClientSecret ? { ingress: { ...grafanaIngress, clientSecret: grafanaClientSecret, ...(workloads.webAclArn ? { webAclArn: workloads.webAclArn } : {}) } } : {},
    loki: {
      replicas: obs.loki.replicas,
      retentionDays: obs.loki.retentionDays,
      storageGiB: obs.loki.storageGiB,
      memoryMiB: obs.loki.memoryMiB,
      ...(obs.loki.storage === 's3' && lokiBucket
        ? {
            s3: {
              bucket: lokiBucket,
              bucketKeyArn: storage.kmsKeyArn,
              bucketExpireDays: cfg.storage.lokiChunksExpireDays,
              oidc: { providerArn: cluster.oidcProviderArn, issuer: cluster.oidcIssuer },
              region: cfg.region,
            },
          }
        : {}),
    },
    charts: obs.charts,
  },
  opts,
);

// Outputs: names and addresses only. The two connection URLs carry credentials and are
// exported as secrets (`pulumi stack output --show-secrets` for break-glass use).
export const region = cfg.region;
export const vpcId = network.vpcId;
export const privateSubnetIds = network.privateSubnetIds;
export const publicSubnetIds = network.publicSubnetIds;
export const clusterName = cluster.clusterName;
export const kubeconfig = cluster.kubeconfig;
export const oidcProviderArn = cluster.oidcProviderArn;
export const databaseAddress = database.address;
export const databasePort = database.port;
export const databaseName = database.databaseName;
export const databaseUrl = database.connectionUrl;
export const redisAddress = cache.primaryEndpoint;
export const redisPort = cache.port;
export const redisUrl = cache.connectionUrl;
export const uploadsBucket = bucket('uploads');
export const resultsBucket = bucket('results');
export const lokiChunksBucket = bucket('loki-chunks');
export const logArchiveBucket = logArchive.bucketName;
export const objectPrefix = cfg.storage.objectPrefix;
export const repositoryUrl = registry.repositoryUrl;
export const apiRoleArn = identity.roleArns.api;
export const workerRoleArn = identity.roleArns.worker;
export const ingressDomain = certificate.domain;
export const ingressCertificateArn = certificate.certificateArn;
export const imageRef = image.imageRef;
export const imageTag = image.tag;
export const appNamespace = workloads.namespace;
export const apiUrl = workloads.url;
export const loadBalancerHostname = workloads.ingressHostname;
export const monitoringNamespace = observability.namespace;
export const grafanaPortForward = observability.grafanaPortForward;
export const grafanaAdminPassword = observability.grafanaAdminPassword;
