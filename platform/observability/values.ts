import type * as pulumi from '@pulumi/pulumi';
import { stringify } from 'yaml';
import { MONITORING } from '../../services/contract';
import type { Placement, Toleration } from '../cluster/placement';
import type { AlertmanagerConfig } from './alertmanager';
import { RECEIVER_SECRET } from './alertmanager';
import { DATASOURCES } from './dashboards';
import { FIXED_REQUESTS, lokiRequests, prometheusRequests, resources } from './sizing';

/** Pod Security `restricted` for charts whose defaults leave something out. */
const RESTRICTED_POD = { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } };
const RESTRICTED_CONTAINER = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } };

export const GRAFANA_ADMIN_SECRET = { name: 'grafana-admin', userKey: 'admin-user', passwordKey: 'admin-password' } as const;
/** Service names inside the monitoring namespace. */
export const SERVICES = {
  prometheus: MONITORING.prometheusService,
  alertmanager: 'monitoring-alertmanager',
  grafana: 'monitoring-grafana',
  loki: 'loki',
} as const;

const inCluster = (service: string, port: number) => `http://${service}.${MONITORING.namespace}.svc:${port}`;
export const LOKI_URL = inCluster(SERVICES.loki, 3100);
export const PROMETHEUS_URL = inCluster(SERVICES.prometheus, MONITORING.prometheusPort);

export interface KubePrometheusStackInput {
  stack: string;
  /** Where the stack's pods run (the system pool). */
  placement: Placement;
  /** What node-exporter tolerates so it runs on every node. */
  nodeAgentTolerations: readonly Toleration[];
  prometheus: { replicas: number; retentionDays: number; storageGiB: number; memoryMiB: number };
  alertmanager: { replicas: number; config: AlertmanagerConfig };
  grafana: { rootUrl?: string };
}

/**
 * kube-prometheus-stack for EKS: the CRDs come from their own chart (installed first), the
 * managed control plane's scheduler, controller manager and etcd are not scraped (EKS does
 * not expose them), kube-proxy is scraped by the node agent on each node's loopback (EKS
 * binds its metrics to 127.0.0.1) and remote-written here, Prometheus selects every
 * ServiceMonitor, PodMonitor and rule in the cluster (not only the chart's own), Grafana
 * takes its admin password from a generated Secret and never allows anonymous access.
 */
export function kubePrometheusStackValues(input: KubePrometheusStackInput): Record<string, unknown> {
  const { placement } = input;
  const onPool = { nodeSelector: placement.nodeSelector, tolerations: placement.tolerations };
  const volume = (gib: number) => ({ volumeClaimTemplate: { spec: { storageClassName: 'gp3', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: `${gib}Gi` } } } } });
  return {
    fullnameOverride: 'monitoring',
    crds: { enabled: false },
    windowsMonitoring: { enabled: false },
    defaultRules: {
      create: true,
      rules: { etcd: false, kubeControllerManager: false, kubeSchedulerAlerting: false, kubeSchedulerRecording: false, windows: false },
    },
    kubeControllerManager: { enabled: false },
    kubeScheduler: { enabled: false },
    kubeEtcd: { enabled: false },
    kubeProxy: { enabled: false },
    prometheusOperator: {
      ...onPool,
      resources: resources(FIXED_REQUESTS.operator),
      prometheusConfigReloader: { resources: resources(FIXED_REQUESTS.configReloader) },
      admissionWebhooks: { patch: { ...onPool } },
    },
    prometheus: {
      podDisruptionBudget: { enabled: input.prometheus.replicas > 1, maxUnavailable: 1 },
      prometheusSpec: {
        ...onPool,
        replicas: input.prometheus.replicas,
        retention: `${input.prometheus.retentionDays}d`,
        // Leave a margin under the volume: a full TSDB stops ingesting.
        retentionSize: `${Math.floor(input.prometheus.storageGiB * 0.85)}GB`,
        storageSpec: volume(input.prometheus.storageGiB),
        resources: resources(prometheusRequests(input.prometheus.memoryMiB)),
        externalLabels: { cluster: input.stack },
        serviceMonitorSelectorNilUsesHelmValues: false,
        podMonitorSelectorNilUsesHelmValues: false,
        ruleSelectorNilUsesHelmValues: false,
        probeSelectorNilUsesHelmValues: false,
        scrapeConfigSelectorNilUsesHelmValues: false,
        serviceMonitorNamespaceSelector: {},
        podMonitorNamespaceSelector: {},
        ruleNamespaceSelector: {},
        // kube-proxy samples arrive from the node agent.
        enableRemoteWriteReceiver: true,
        podAntiAffinity: input.prometheus.replicas > 1 ? 'hard' : 'soft',
      },
    },
    alertmanager: {
      podDisruptionBudget: { enabled: input.alertmanager.replicas > 1, maxUnavailable: 1 },
      // The whole file, not merged with the chart's default: exactly what `npm run rules` prints.
      stringConfig: stringify(input.alertmanager.config, { lineWidth: 0 }),
      alertmanagerSpec: {
        ...onPool,
        replicas: input.alertmanager.replicas,
        secrets: [RECEIVER_SECRET.name],
        resources: resources(FIXED_REQUESTS.alertmanager),
        storage: volume(2),
        podAntiAffinity: input.alertmanager.replicas > 1 ? 'hard' : 'soft',
      },
    },
    grafana: {
      ...onPool,
      fullnameOverride: 'monitoring-grafana',
      admin: { existingSecret: GRAFANA_ADMIN_SECRET.name, userKey: GRAFANA_ADMIN_SECRET.userKey, passwordKey: GRAFANA_ADMIN_SECRET.passwordKey },
      'grafana.ini': {
        'auth.anonymous': { enabled: false },
        users: { allow_sign_up: false },
        security: { cookie_secure: input.grafana.rootUrl !== undefined, disable_gravatar: true },
        analytics: { reporting_enabled: false, check_for_updates: false },
        ...(input.grafana.rootUrl ? { server: { root_url: input.grafana.rootUrl } } : {}),
      },
      // Dashboards and data sources are provisioned; nothing in Grafana needs to survive a restart.
      persistence: { enabled: false },
      initChownData: { enabled: false },
      testFramework: { enabled: false },
      resources: resources(FIXED_REQUESTS.grafana),
      securityContext: { ...RESTRICTED_POD, runAsUser: 472, runAsGroup: 472, fsGroup: 472 },
      sidecar: {
        resources: resources(FIXED_REQUESTS.grafanaSidecar),
        dashboards: { enabled: true, label: 'grafana_dashboard', labelValue: '1', searchNamespace: [MONITORING.namespace], folderAnnotation: 'grafana_folder', provider: { foldersFromFilesStructure: true } },
        datasources: { enabled: true, uid: DATASOURCES.prometheus.uid, defaultDatasourceEnabled: true },
      },
      additionalDataSources: [{ name: 'Loki', type: 'loki', uid: DATASOURCES.loki.uid, url: LOKI_URL, access: 'proxy', jsonData: { maxLines: 1000 } }],
      serviceMonitor: { enabled: true },
    },
    'kube-state-metrics': { ...onPool, resources: resources(FIXED_REQUESTS.kubeStateMetrics) },
    'prometheus-node-exporter': {
      namespaceOverride: MONITORING.nodeAgentsNamespace,
      tolerations: input.nodeAgentTolerations,
      resources: resources(FIXED_REQUESTS.nodeExporter),
    },
  };
}

export interface LokiInput {
  placement: Placement;
  replicas: number;
  retentionDays: number;
  storageGiB: number;
  memoryMiB: number;
  /** Object storage; filesystem on the volume when unset. */
  s3?: { bucket: pulumi.Input<string>; region: string; roleArn: pulumi.Input<string> };
}

/**
 * Loki as a single binary (monolithic): on its volume in filesystem mode, or with replicas
 * sharing the S3 bucket. Retention is enforced by the compactor; the bucket's own expiry is
 * a backstop set no earlier than it (validated by the stack config). No gateway, caches or
 * canary: Grafana and the log shipper talk to the one Service.
 */
export function lokiValues(input: LokiInput): Record<string, unknown> {
  const store = input.s3 ? 's3' : 'filesystem';
  return {
    deploymentMode: 'SingleBinary',
    fullnameOverride: SERVICES.loki,
    loki: {
      auth_enabled: false,
      commonConfig: { replication_factor: input.s3 ? Math.min(input.replicas, 3) : 1 },
      schemaConfig: { configs: [{ from: '2024-04-01', store: 'tsdb', object_store: store, schema: 'v13', index: { prefix: 'loki_index_', period: '24h' } }] },
      storage: input.s3 ? { type: 's3', bucketNames: { chunks: input.s3.bucket, ruler: input.s3.bucket }, s3: { region: input.s3.region } } : { type: 'filesystem' },
      limits_config: { retention_period: `${input.retentionDays * 24}h`, allow_structured_metadata: true, volume_enabled: true },
      compactor: { retention_enabled: true, delete_request_store: store, working_directory: '/var/loki/compactor' },
      pattern_ingester: { enabled: false },
      podSecurityContext: { ...RESTRICTED_POD, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001 },
      containerSecurityContext: RESTRICTED_CONTAINER,
    },
    serviceAccount: { create: true, name: SERVICES.loki, annotations: input.s3 ? { 'eks.amazonaws.com/role-arn': input.s3.roleArn } : {} },
    singleBinary: {
      replicas: input.replicas,
      nodeSelector: input.placement.nodeSelector,
      tolerations: input.placement.tolerations,
      resources: resources(lokiRequests(input.memoryMiB)),
      persistence: { enabled: true, size: `${input.storageGiB}Gi`, storageClass: 'gp3' },
    },
    read: { replicas: 0 },
    write: { replicas: 0 },
    backend: { replicas: 0 },
    gateway: { enabled: false },
    chunksCache: { enabled: false },
    resultsCache: { enabled: false },
    lokiCanary: { enabled: false },
    test: { enabled: false },
    minio: { enabled: false },
    ruler: { enabled: false },
    monitoring: { serviceMonitor: { enabled: true } },
  };
}

export interface AlloyInput {
  stack: string;
  /** Namespace of the api and worker, whose JSON lines are parsed. */
  appNamespace: string;
  /** What the DaemonSet tolerates so it runs on every node. */
  tolerations: readonly Toleration[];
}

/**
 * The log shipper's pipeline (Grafana Alloy): tail every container log on its node, parse
 * the platform's JSON lines so `level` and `service` become labels and `requestId`/`jobId`
 * structured metadata (queryable without a label per request), push to Loki; and scrape
 * kube-proxy on the node's loopback for Prometheus.
 */
export function alloyConfig(input: Omit<AlloyInput, 'tolerations'>): string {
  return `// Generated by platform/observability/values.ts.
discovery.kubernetes "pods" {
  role = "pod"
  selectors {
    role  = "pod"
    field = "spec.nodeName=" + sys.env("HOSTNAME")
  }
}

discovery.relabel "pods" {
  targets = discovery.kubernetes.pods.targets
  rule {
    source_labels = ["__meta_kubernetes_namespace"]
    target_label  = "namespace"
  }
  rule {
    source_labels = ["__meta_kubernetes_pod_name"]
    target_label  = "pod"
  }
  rule {
    source_labels = ["__meta_kubernetes_pod_container_name"]
    target_label  = "container"
  }
  rule {
    source_labels = ["__meta_kubernetes_pod_label_app_kubernetes_io_name"]
    target_label  = "app"
  }
  rule {
    source_labels = ["__meta_kubernetes_pod_uid", "__meta_kubernetes_pod_container_name"]
    separator     = "/"
    target_label  = "__path__"
    replacement   = "/var/log/pods/*$1/*.log"
  }
}

local.file_match "pods" {
  path_targets = discovery.relabel.pods.output
}

loki.source.file "pods" {
  targets    = local.file_match.pods.targets
  forward_to = [loki.process.pods.receiver]
}

loki.process "pods" {
  stage.cri {}

  stage.match {
    selector = "{namespace=\\"${input.appNamespace}\\"}"

    stage.json {
      expressions = { level = "level", service = "service", requestId = "requestId", jobId = "jobId" }
    }
    stage.labels {
      values = { level = "", service = "" }
    }
    stage.structured_metadata {
      values = { requestId = "", jobId = "" }
    }
  }

  forward_to = [loki.write.default.receiver]
}

loki.write "default" {
  endpoint {
    url = "${LOKI_URL}/loki/api/v1/push"
  }
  external_labels = { cluster = "${input.stack}" }
}

prometheus.scrape "kube_proxy" {
  targets    = [{ "__address__" = "127.0.0.1:10249", "instance" = sys.env("HOSTNAME") }]
  job_name   = "kube-proxy"
  forward_to = [prometheus.remote_write.default.receiver]
}

prometheus.remote_write "default" {
  endpoint {
    url = "${PROMETHEUS_URL}/api/v1/write"
  }
  external_labels = { cluster = "${input.stack}" }
}
`;
}

/**
 * Alloy as a DaemonSet on every node, in the node agents' namespace: it reads
 * /var/log/pods from the host (root, read-only) and shares the node's network so it can
 * reach kube-proxy's loopback-only metrics port.
 */
export function alloyValues(input: AlloyInput): Record<string, unknown> {
  return {
    fullnameOverride: 'alloy',
    crds: { create: false },
    alloy: {
      configMap: { create: true, content: alloyConfig(input) },
      mounts: { varlog: true },
      clustering: { enabled: false },
      securityContext: { runAsUser: 0, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'], add: ['DAC_READ_SEARCH'] }, seccompProfile: { type: 'RuntimeDefault' } },
      resources: resources(FIXED_REQUESTS.alloy),
    },
    configReloader: { resources: resources(FIXED_REQUESTS.alloyReloader) },
    controller: { type: 'daemonset', hostNetwork: true, dnsPolicy: 'ClusterFirstWithHostNet', tolerations: input.tolerations },
    serviceMonitor: { enabled: true },
  };
}
