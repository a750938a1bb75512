import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import * as random from '@pulumi/random';
import { JOB_LABEL, MONITORING, ROUTE_CLASSES, SCRAPE_TARGETS } from '../../services/contract';
import { KEDA_COMPONENTS, KEDA_METRICS_PORT, KEDA_NAMESPACE } from '../cluster/keda-network-policy';
import { EVERY_NODE_TOLERATIONS, PLACEMENT, type Placement, type Toleration } from '../cluster/placement';
import { createIrsaRole, type OidcIdentity } from '../identity/irsa';
import { awsContext } from '../shared/aws-context';
import { policyDocument } from '../shared/iam';
import { ALB_SSL_POLICY } from '../workloads/ingress';
import { SERVICE_ACCOUNTS } from '../workloads/pod';
import { RECEIVER_SECRET, alertmanagerConfig, type AlertRoutingOptions } from './alertmanager';
import { platformDashboards } from './dashboards';
import { platformRuleGroups } from './rules';
import { GRAFANA_ADMIN_SECRET, SERVICES, alloyValues, kubePrometheusStackValues, lokiValues } from './values';

export { renderAlerting } from './render';

/** Exact chart versions (never ranges). All required. */
export interface ObservabilityCharts {
  /** `kube-prometheus-stack` from https://prometheus-community.github.io/helm-charts. */
  kubePrometheusStack: string;
  /** `prometheus-operator-crds` from the same repository, matching the stack's operator. */
  prometheusOperatorCrds: string;
  /** `loki` from https://grafana.github.io/helm-charts. */
  loki: string;
  /** `alloy` from https://grafana.github.io/helm-charts. */
  alloy: string;
}

export interface LokiS3Storage {
  /** The bucket Loki keeps chunks and index in. */
  bucket: { name: pulumi.Input<string>; arn: pulumi.Input<string> };
  /** KMS key the bucket encrypts with. */
  bucketKeyArn: pulumi.Input<string>;
  /** Days before the bucket expires objects: must be ≥ retentionDays. */
  bucketExpireDays: number;
  /** The cluster's OIDC identity, for Loki's IRSA role. */
  oidc: OidcIdentity;
  /** Region of the bucket. */
  region: string;
}

export interface ObservabilityArgs {
  /** Stack name, the `cluster` label on every series and log line. Required. */
  stack: string;
  /** Provider of the cluster to deploy into. Required. */
  provider: k8s.Provider;
  /**
   * What must exist before any Kubernetes object here: the cluster's `ready` (node groups,
   * add-ons, access entries and every Helm release, the load balancer controller whose
   * webhooks admit each Service and Ingress among them). Every object and release here
   * depends on it. Required.
   */
  ready: pulumi.Input<pulumi.Resource>[];
  /** Namespace of the api and worker (scraped, and their logs parsed). Required. */
  appNamespace: string;
  /** The VPC's CIDR: node agents on the host network, the API server and the ALB come from it. Required. */
  vpcCidr: string;
  /** Where Prometheus, Alertmanager, Grafana, Loki and the operator run. Default `PLACEMENT.system` (the system pool). */
  placement?: Placement;
  /** What the node agents (node-exporter, Alloy) tolerate so they run on every node. Default `EVERY_NODE_TOLERATIONS`. */
  nodeAgentTolerations?: readonly Toleration[];
  /** Where alert descriptions point; each alert links to `<base>/<AlertName>.md`. Required. */
  runbookBaseUrl: string;
  prometheus: {
    /** Replicas. Default 1. */
    replicas?: number;
    /** Days kept. Default 15. */
    retentionDays?: number;
    /** Volume per replica, GiB. Default 50. */
    storageGiB?: number;
    /** Memory per replica, MiB (request and limit). Default 2048. */
    memoryMiB?: number;
  };
  /** Alertmanager replicas. Default 1. */
  alertmanagerReplicas?: number;
  /** Alert routing and the secret credentials it needs (left out when unset). Default: no receiver. */
  alerting?: AlertRoutingOptions & { slackWebhookUrl?: pulumi.Input<string>; pagerDutyRoutingKey?: pulumi.Input<string> };
  grafana?: {
    /** Publish Grafana through the ALB behind OIDC. Default: none (port-forward). */
    ingress?: {
      host: string;
      certificateArn: string;
      oidc: { issuer: string; authorizationEndpoint: string; tokenEndpoint: string; userInfoEndpoint: string; clientId: string };
      clientSecret: pulumi.Input<string>;
      /** WAFv2 web ACL in front of Grafana's ALB (the stack's, where it has one). Default none. */
      webAclArn?: pulumi.Input<string>;
    };
  };
  loki: {
    /** Replicas (1 with filesystem storage). Default 1. */
    replicas?: number;
    /** Days of logs kept. Default 14. */
    retentionDays?: number;
    /** Volume per replica, GiB. Default 20. */
    storageGiB?: number;
    /** Memory per replica, MiB. Default 1024. */
    memoryMiB?: number;
    /** S3 storage; filesystem on the volume when unset. */
    s3?: LokiS3Storage;
  };
  charts: ObservabilityCharts;
  /** Escape hatch over the rendered chart values. Default identity. */
  transform?: { kubePrometheusStack?: (values: Record<string, unknown>) => Record<string, unknown> };
}

const EXACT_VERSION = /^\d+\.\d+\.\d+$/;

/** Problems with the args, empty when they are usable. Pure, so tests can call it. */
export function validateObservabilityArgs(args: ObservabilityArgs): string[] {
  const problems: string[] = [];
  for (const [chart, version] of Object.entries(args.charts)) if (!EXACT_VERSION.test(version)) problems.push(`charts.${chart} ${version} must be an exact version such as 1.2.3`);
  const loki = args.loki;
  const retention = loki.retentionDays ?? 14;
  if ((loki.replicas ?? 1) > 1 && !loki.s3) problems.push('loki.replicas > 1 needs S3 storage: replicas cannot share a volume');
  if (loki.s3 && loki.s3.bucketExpireDays < retention) problems.push(`loki bucket expires objects after ${loki.s3.bucketExpireDays} days, before Loki's retention of ${retention} days: the index would point at deleted chunks`);
  if ((args.prometheus.retentionDays ?? 15) < 4) problems.push('prometheus.retentionDays must be at least 4: the slow-burn alerts read 3 days');
  if (!/^https:\/\//.test(args.runbookBaseUrl)) problems.push(`runbookBaseUrl ${args.runbookBaseUrl} must be an https URL`);
  if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(args.vpcCidr)) problems.push(`vpcCidr ${args.vpcCidr} must be an IPv4 CIDR`);
  if (args.alerting?.slack && args.alerting.slackWebhookUrl === undefined) problems.push('alerting.slack needs slackWebhookUrl');
  if (args.alerting?.pagerDuty && args.alerting.pagerDutyRoutingKey === undefined) problems.push('alerting.pagerDuty needs pagerDutyRoutingKey');
  if (args.appNamespace === MONITORING.namespace || args.appNamespace === MONITORING.nodeAgentsNamespace) problems.push(`appNamespace must not be ${args.appNamespace}, which the monitoring stack owns`);
  return problems;
}

/** The exact actions Loki uses on its bucket: its compactor deletes what retention drops. */
export function lokiBucketPolicyStatements(bucketArn: string, keyArn: string, region: string) {
  return [
    { Sid: 'ListChunks', Effect: 'Allow' as const, Action: 's3:ListBucket', Resource: bucketArn },
    { Sid: 'ReadWriteExpireChunks', Effect: 'Allow' as const, Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], Resource: `${bucketArn}/*` },
    { Sid: 'BucketKey', Effect: 'Allow' as const, Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: keyArn, Condition: { StringEquals: { 'kms:ViaService': `s3.${region}.amazonaws.com` } } },
  ];
}

/** Pod Security admission labels: `enforce` at `level`, `audit` and `warn` at restricted. */
function podSecurityLabels(level: 'restricted' | 'privileged'): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [mode, value] of [['enforce', level], ['audit', 'restricted'], ['warn', 'restricted']] as const) {
    labels[`pod-security.kubernetes.io/${mode}`] = value;
    labels[`pod-security.kubernetes.io/${mode}-version`] = 'latest';
  }
  return labels;
}

const PRIVILEGED_REASON =
  'Node agents only: node-exporter reads /proc, /sys and the root filesystem in the host PID and network namespaces; the log shipper reads /var/log/pods from the host and scrapes kube-proxy on the node loopback.';

/**
 * The observability stack of a cluster: Prometheus Operator CRDs first, then
 * kube-prometheus-stack (Prometheus, Alertmanager, Grafana, kube-state-metrics,
 * node-exporter), Loki and the Alloy log shipper, all pinned; the platform's scrape
 * targets, rules and dashboards generated from services/contract; Grafana's admin password
 * generated; Alertmanager's credentials kept as secrets end to end. Everything waits for
 * `ready`; every ServiceMonitor, PodMonitor and PrometheusRule waits for the CRDs.
 */
export class Observability extends pulumi.ComponentResource {
  public readonly namespace: string = MONITORING.namespace;
  public readonly nodeAgentsNamespace: string = MONITORING.nodeAgentsNamespace;
  /** Grafana's admin password (secret). */
  public readonly grafanaAdminPassword: pulumi.Output<string>;
  /** `kubectl port-forward` command that reaches Grafana. */
  public readonly grafanaPortForward: string;
  /** Loki's IRSA role, when it stores in S3. */
  public readonly lokiRoleArn: pulumi.Output<string> | undefined;

  constructor(name: string, args: ObservabilityArgs, opts?: pulumi.ComponentResourceOptions) {
    super('platform-kit:observability:Observability', name, {}, opts);
    const problems = validateObservabilityArgs(args);
    if (problems.length > 0) throw new pulumi.ResourceError(`Observability ${name}: ${problems.join('; ')}`, this);

    const provider = args.provider;
    // Options every direct child shares: parented here, so it inherits this component's providers.
    const own = { parent: this };
    const placement: Placement = args.placement ?? PLACEMENT.system;
    const nodeAgentTolerations = args.nodeAgentTolerations ?? EVERY_NODE_TOLERATIONS;
    const k8sOpts = (dependsOn: pulumi.Input<pulumi.Resource>[] = []): pulumi.CustomResourceOptions => ({ ...own, provider, dependsOn: [...args.ready, ...dependsOn] });

    const namespaces = createNamespaces();
    createNetworkPolicies();
    const crds = installCrds();
    const grafanaAdmin = createGrafanaAdmin();
    const receivers = createReceiverSecret();
    const stackRelease = installKubePrometheusStack();
    const loki = installLoki();
    installAlloy();
    const monitors = createScrapeTargets();
    const rules = createRules();
    createDashboards();
    createGrafanaIngress();
    createDoctorAccess();
    recordStack(rules);

    this.grafanaAdminPassword = pulumi.secret(grafanaAdmin.password);
    this.grafanaPortForward = `kubectl -n ${MONITORING.namespace} port-forward svc/${SERVICES.grafana} 3000:80`;
    this.lokiRoleArn = loki.roleArn;
    this.registerOutputs({ namespace: this.namespace, grafanaPortForward: this.grafanaPortForward, lokiRoleArn: this.lokiRoleArn, monitors: monitors.length });

    function createNamespaces(): { monitoring: k8s.core.v1.Namespace; agents: k8s.core.v1.Namespace } {
      const monitoring = new k8s.core.v1.Namespace(
        `${name}-namespace`,
        {
          metadata: {
            name: MONITORING.namespace,
            labels: podSecurityLabels('restricted'),
          },
        },
        k8sOpts(),
      );
      const agents = new k8s.core.v1.Namespace(
        `${name}-node-agents-namespace`,
        {
          metadata: {
            name: MONITORING.nodeAgentsNamespace,
            // Audit and warn stay restricted, so what the agents do beyond it is on record.
            labels: podSecurityLabels('privileged'),
            annotations: { 'platform-kit.io/pod-security-exception': PRIVILEGED_REASON },
          },
        },
        k8sOpts(),
      );
      return { monitoring, agents };
    }

    function createNetworkPolicies(): void {
      const fromVpc = { ipBlock: { cidr: args.vpcCidr } };
      const port = (p: number) => ({ protocol: 'TCP', port: p });
      new k8s.networking.v1.NetworkPolicy(
        `${name}-netpol`,
        {
          metadata: { name: 'monitoring', namespace: MONITORING.namespace },
          spec: {
            podSelector: {},
            policyTypes: ['Ingress'],
            ingress: [
              // Each other: Grafana to Prometheus and Loki, Prometheus to Alertmanager and every exporter, the gossip of replicas.
              { from: [{ podSelector: {} }] },
              // Node agents (host network), the API server (webhooks, service proxy for `platform doctor`) and the ALB (Grafana ingress).
              { from: [fromVpc], ports: [port(MONITORING.prometheusPort), port(3100), port(3000), port(10250)] },
              // `platform doctor`, run in an app pod, reads Prometheus (rules loaded, targets up).
              { from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': args.appNamespace } } }], ports: [port(MONITORING.prometheusPort)] },
            ],
          },
        },
        { ...k8sOpts([namespaces.monitoring]), parent: namespaces.monitoring },
      );
      new k8s.networking.v1.NetworkPolicy(
        `${name}-node-agents-netpol`,
        {
          metadata: { name: 'node-agents', namespace: MONITORING.nodeAgentsNamespace },
          spec: {
            podSelector: {},
            policyTypes: ['Ingress'],
            // Only Prometheus scrapes the agents (node-exporter 9100, Alloy 12345).
            ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': MONITORING.namespace } } }, fromVpc], ports: [port(9100), port(12345)] }],
          },
        },
        { ...k8sOpts([namespaces.agents]), parent: namespaces.agents },
      );
    }

    function release(role: string, chart: string, version: string, repo: string, namespace: string, values: pulumi.Input<Record<string, unknown>>, after: pulumi.Input<pulumi.Resource>[]): k8s.helm.v3.Release {
      return new k8s.helm.v3.Release(
        `${name}-${role}`,
        { name: role, chart, version, repositoryOpts: { repo }, namespace, cleanupOnFail: true, atomic: false, timeout: 900, values },
        k8sOpts(after),
      );
    }

    function installCrds(): k8s.helm.v3.Release {
      // Its own chart, in templates/ rather than crds/, so upgrades reach the CRDs too (Helm never
      // upgrades a crds/ folder), and installed before anything that creates a ServiceMonitor.
      return release('prometheus-operator-crds', 'prometheus-operator-crds', args.charts.prometheusOperatorCrds, PROMETHEUS_COMMUNITY, MONITORING.namespace, {}, [namespaces.monitoring]);
    }

    function createGrafanaAdmin(): { password: pulumi.Output<string>; secret: k8s.core.v1.Secret } {
      const password = new random.RandomPassword(`${name}-grafana-admin-password`, { length: 32, special: false }, own);
      const secret = new k8s.core.v1.Secret(
        `${name}-grafana-admin`,
        {
          metadata: { name: GRAFANA_ADMIN_SECRET.name, namespace: MONITORING.namespace },
          type: 'Opaque',
          stringData: { [GRAFANA_ADMIN_SECRET.userKey]: 'admin', [GRAFANA_ADMIN_SECRET.passwordKey]: password.result },
        },
        k8sOpts([namespaces.monitoring]),
      );
      return { password: password.result, secret };
    }

    function createReceiverSecret(): k8s.core.v1.Secret {
      const data: Record<string, pulumi.Input<string>> = {};
      if (args.alerting?.slackWebhookUrl !== undefined) data[RECEIVER_SECRET.slackWebhookUrl] = args.alerting.slackWebhookUrl;
      if (args.alerting?.pagerDutyRoutingKey !== undefined) data[RECEIVER_SECRET.pagerDutyRoutingKey] = args.alerting.pagerDutyRoutingKey;
      // Always present: Alertmanager mounts it whether or not a receiver has credentials yet.
      return new k8s.core.v1.Secret(
        `${name}-alertmanager-receivers`,
        { metadata: { name: RECEIVER_SECRET.name, namespace: MONITORING.namespace }, type: 'Opaque', stringData: pulumi.secret(data) },
        k8sOpts([namespaces.monitoring]),
      );
    }

    function installKubePrometheusStack(): k8s.helm.v3.Release {
      const rootUrl = args.grafana?.ingress ? `https://${args.grafana.ingress.host}/` : undefined;
      const values = kubePrometheusStackValues({
        stack: args.stack,
        placement,
        nodeAgentTolerations,
        prometheus: {
          replicas: args.prometheus.replicas ?? 1,
          retentionDays: args.prometheus.retentionDays ?? 15,
          storageGiB: args.prometheus.storageGiB ?? 50,
          memoryMiB: args.prometheus.memoryMiB ?? 2048,
        },
        alertmanager: { replicas: args.alertmanagerReplicas ?? 1, config: alertmanagerConfig({ slack: args.alerting?.slack, pagerDuty: args.alerting?.pagerDuty }) },
        grafana: rootUrl ? { rootUrl } : {},
      });
      return release(
        'monitoring',
        'kube-prometheus-stack',
        args.charts.kubePrometheusStack,
        PROMETHEUS_COMMUNITY,
        MONITORING.namespace,
        args.transform?.kubePrometheusStack?.(values) ?? values,
        [crds, namespaces.agents, grafanaAdmin.secret, receivers],
      );
    }

    function installLoki(): { release: k8s.helm.v3.Release; roleArn?: pulumi.Output<string> } {
      const l = args.loki;
      let s3: { bucket: pulumi.Input<string>; region: string; roleArn: pulumi.Input<string> } | undefined;
      let roleArn: pulumi.Output<string> | undefined;
      if (l.s3) {
        const storage = l.s3;
        const ctx = awsContext(own.parent);
        const policy = pulumi
          .all([storage.bucket.arn, storage.bucketKeyArn, ctx.region])
          .apply(([bucketArn, keyArn, region]) => JSON.stringify(policyDocument(...lokiBucketPolicyStatements(bucketArn, keyArn, region))));
        roleArn = createIrsaRole(
          `${name}-loki`,
          { oidc: storage.oidc, namespace: MONITORING.namespace, serviceAccount: SERVICES.loki, description: 'Loki: chunks and index in its bucket, compactor retention', policy },
          own,
        ).arn;
        s3 = { bucket: storage.bucket.name, region: storage.region, roleArn };
      }
      const values = lokiValues({
        placement,
        replicas: l.replicas ?? 1,
        retentionDays: l.retentionDays ?? 14,
        storageGiB: l.storageGiB ?? 20,
        memoryMiB: l.memoryMiB ?? 1024,
        ...(s3 ? { s3 } : {}),
      });
      return { release: release('loki', 'loki', args.charts.loki, GRAFANA, MONITORING.namespace, values, [crds, namespaces.monitoring]), roleArn };
    }

    function installAlloy(): k8s.helm.v3.Release {
      return release('alloy', 'alloy', args.charts.alloy, GRAFANA, MONITORING.nodeAgentsNamespace, alloyValues({ stack: args.stack, appNamespace: args.appNamespace, tolerations: nodeAgentTolerations }), [crds, namespaces.agents, loki.release, stackRelease]);
    }

    function crdObject(role: string, apiVersion: string, kind: string, metadata: Record<string, unknown>, spec: Record<string, unknown>): k8s.apiextensions.CustomResource {
      return new k8s.apiextensions.CustomResource(`${name}-${role}`, { apiVersion, kind, metadata: { namespace: MONITORING.namespace, ...metadata }, spec }, k8sOpts([crds, namespaces.monitoring]));
    }

    function createScrapeTargets(): k8s.apiextensions.CustomResource[] {
      const { api, worker } = SCRAPE_TARGETS;
      const common = { jobLabel: JOB_LABEL, namespaceSelector: { matchNames: [args.appNamespace] } };
      // Both live here and select across namespaces, so they need nothing of the app namespace to exist.
      return [
        crdObject('api-service-monitor', 'monitoring.coreos.com/v1', 'ServiceMonitor', { name: `platform-${api.job}` }, {
          ...common,
          selector: { matchLabels: api.podLabels },
          endpoints: [{ port: api.portName, path: api.path, interval: '30s', scrapeTimeout: '10s' }],
        }),
        crdObject('worker-pod-monitor', 'monitoring.coreos.com/v1', 'PodMonitor', { name: `platform-${worker.job}` }, {
          ...common,
          selector: { matchLabels: worker.podLabels },
          podMetricsEndpoints: [{ port: worker.portName, path: worker.path, interval: '30s', scrapeTimeout: '10s' }],
        }),
        // KEDA's chart names its metrics ports differently per component and version; the number is what its
        // NetworkPolicy admits, so the scrape follows the number. The chart's own PodMonitors cannot be used:
        // KEDA installs with the cluster, before these CRDs exist.
        crdObject('keda-pod-monitor', 'monitoring.coreos.com/v1', 'PodMonitor', { name: 'keda' }, {
          jobLabel: 'app',
          namespaceSelector: { matchNames: [KEDA_NAMESPACE] },
          selector: { matchExpressions: [{ key: 'app', operator: 'In', values: Object.values(KEDA_COMPONENTS) }] },
          podMetricsEndpoints: [{ targetPort: KEDA_METRICS_PORT, path: '/metrics', interval: '60s', scrapeTimeout: '10s' }],
        }),
      ];
    }

    function createRules(): { names: string[]; alerts: string[] } {
      const groups = platformRuleGroups({ runbookBaseUrl: args.runbookBaseUrl });
      for (const group of groups) {
        crdObject(`rules-${group.name}`, 'monitoring.coreos.com/v1', 'PrometheusRule', { name: group.name, labels: { [MONITORING.rulesLabel]: 'true' } }, { groups: [group] });
      }
      return { names: groups.map((g) => g.name), alerts: groups.flatMap((g) => g.rules.flatMap((r) => ('alert' in r ? [r.alert] : []))) };
    }

    function createDashboards(): void {
      for (const dashboard of platformDashboards(args.appNamespace)) {
        new k8s.core.v1.ConfigMap(
          `${name}-dashboard-${dashboard.uid}`,
          {
            metadata: { name: `dashboard-${dashboard.uid}`, namespace: MONITORING.namespace, labels: { grafana_dashboard: '1' }, annotations: { grafana_folder: 'Platform Kit' } },
            data: { [`${dashboard.uid}.json`]: JSON.stringify(dashboard) },
          },
          k8sOpts([namespaces.monitoring]),
        );
      }
    }

    function createGrafanaIngress(): void {
      const ingress = args.grafana?.ingress;
      if (!ingress) return;
      const secret = new k8s.core.v1.Secret(
        `${name}-grafana-oidc`,
        { metadata: { name: 'grafana-oidc', namespace: MONITORING.namespace }, type: 'Opaque', stringData: { clientID: ingress.oidc.clientId, clientSecret: pulumi.secret(ingress.clientSecret) } },
        k8sOpts([namespaces.monitoring]),
      );
      new k8s.networking.v1.Ingress(
        `${name}-grafana-ingress`,
        {
          metadata: {
            name: 'grafana',
            namespace: MONITORING.namespace,
            annotations: {
              'alb.ingress.kubernetes.io/scheme': 'internet-facing',
              'alb.ingress.kubernetes.io/target-type': 'ip',
              'alb.ingress.kubernetes.io/listen-ports': '[{"HTTPS":443}]',
              'alb.ingress.kubernetes.io/certificate-arn': ingress.certificateArn,
              'alb.ingress.kubernetes.io/ssl-policy': ALB_SSL_POLICY,
              'alb.ingress.kubernetes.io/auth-type': 'oidc',
              'alb.ingress.kubernetes.io/auth-on-unauthenticated-request': 'authenticate',
              'alb.ingress.kubernetes.io/auth-idp-oidc': JSON.stringify({
                issuer: ingress.oidc.issuer,
                authorizationEndpoint: ingress.oidc.authorizationEndpoint,
                tokenEndpoint: ingress.oidc.tokenEndpoint,
                userInfoEndpoint: ingress.oidc.userInfoEndpoint,
                secretName: 'grafana-oidc',
              }),
              [`alb.ingress.kubernetes.io/actions.${IN_CLUSTER_ONLY}`]: JSON.stringify({ type: 'fixed-response', fixedResponseConfig: { contentType: 'text/plain', statusCode: '404', messageBody: 'Not Found' } }),
              ...(ingress.webAclArn !== undefined ? { 'alb.ingress.kubernetes.io/wafv2-acl-arn': ingress.webAclArn } : {}),
            },
          },
          spec: {
            ingressClassName: 'alb',
            rules: [
              {
                host: ingress.host,
                http: {
                  paths: [
                    // Grafana's own /metrics (Prometheus scrapes it in the cluster) and the probe paths get the load
                    // balancer's 404: Exact paths outrank the catch-all in the controller's rule order.
                    ...ROUTE_CLASSES.operational.map((path) => ({ path, pathType: 'Exact', backend: { service: { name: IN_CLUSTER_ONLY, port: { name: 'use-annotation' } } } })),
                    { path: '/', pathType: 'Prefix', backend: { service: { name: SERVICES.grafana, port: { number: 80 } } } },
                  ],
                },
              },
            ],
          },
        },
        k8sOpts([stackRelease, secret]),
      );
    }

    function createDoctorAccess(): void {
      // `platform doctor --stack` runs in the api's pods (the CLI ships in the image) as the
      // api's service account, whose token those pods mount: it reads CRDs, the KEDA scaler
      // and the rules, and asks Prometheus through the API server.
      const reader = new k8s.rbac.v1.ClusterRole(
        `${name}-doctor-role`,
        {
          metadata: { name: 'platform-kit-doctor' },
          rules: [
            { apiGroups: ['apiextensions.k8s.io'], resources: ['customresourcedefinitions'], verbs: ['get', 'list'] },
            { apiGroups: ['keda.sh'], resources: ['scaledobjects'], verbs: ['get', 'list'] },
            { apiGroups: ['monitoring.coreos.com'], resources: ['prometheusrules', 'servicemonitors', 'podmonitors'], verbs: ['get', 'list'] },
          ],
        },
        k8sOpts(),
      );
      const subject = { kind: 'ServiceAccount', name: SERVICE_ACCOUNTS.api, namespace: args.appNamespace };
      new k8s.rbac.v1.ClusterRoleBinding(
        `${name}-doctor-binding`,
        { metadata: { name: 'platform-kit-doctor' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: reader.metadata.name }, subjects: [subject] },
        k8sOpts(),
      );
      const local = new k8s.rbac.v1.Role(
        `${name}-doctor-local-role`,
        {
          metadata: { name: 'platform-kit-doctor', namespace: MONITORING.namespace },
          rules: [
            { apiGroups: [''], resources: ['configmaps'], resourceNames: [MONITORING.stackConfigMap], verbs: ['get'] },
            { apiGroups: [''], resources: ['services/proxy'], resourceNames: [SERVICES.prometheus, `${SERVICES.prometheus}:${MONITORING.prometheusPort}`, `http:${SERVICES.prometheus}:${MONITORING.prometheusPort}`], verbs: ['get'] },
          ],
        },
        k8sOpts([namespaces.monitoring]),
      );
      new k8s.rbac.v1.RoleBinding(
        `${name}-doctor-local-binding`,
        { metadata: { name: 'platform-kit-doctor', namespace: MONITORING.namespace }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: local.metadata.name }, subjects: [subject] },
        k8sOpts([namespaces.monitoring]),
      );
    }

    function recordStack(shipped: { names: string[]; alerts: string[] }): void {
      // What `platform doctor --stack` compares the cluster against.
      new k8s.core.v1.ConfigMap(
        `${name}-stack-record`,
        {
          metadata: { name: MONITORING.stackConfigMap, namespace: MONITORING.namespace },
          data: {
            'stack.json': JSON.stringify({
              stack: args.stack,
              appNamespace: args.appNamespace,
              monitoringNamespace: MONITORING.namespace,
              nodeAgentsNamespace: MONITORING.nodeAgentsNamespace,
              prometheusService: SERVICES.prometheus,
              prometheusPort: MONITORING.prometheusPort,
              ruleGroups: shipped.names,
              alerts: shipped.alerts,
            }),
          },
        },
        k8sOpts([namespaces.monitoring]),
      );
    }
  }
}

const PROMETHEUS_COMMUNITY = 'https://prometheus-community.github.io/helm-charts';
/** The Grafana Ingress's fixed-response action for paths that never leave the cluster. */
const IN_CLUSTER_ONLY = 'in-cluster-only';
const GRAFANA = 'https://grafana.github.io/helm-charts';
