/**
 * What the observability stack must be in every stack, over one captured graph. Each stack's
 * test file captures once and calls `describeObservability`, then adds its own expectations.
 */
import { parse } from 'yaml';
import { MONITORING, SCRAPE_TARGETS } from '../../services/contract';
import { EVERY_NODE_TOLERATIONS, KEDA_INGRESS, KEDA_NAMESPACE, PLACEMENT } from '../../platform/cluster';
import { renderAlerting } from '../../platform/observability/render';
import type { StackConfig } from '../../platform/config';
import { capacityReport, type Footprint, landingOn, poolAtMinimum } from '../../platform/observability/capacity';
import { monitoringFootprint } from '../../platform/observability/sizing';
import { memoryMiB, workloadsFootprint } from '../../platform/workloads/footprint';
import { readStackFile } from '../../tools/observability/stack-file';
import { evaluate } from '../../tools/offline/evaluate';
import { renderObject } from '../../tools/offline/manifests';
import type { CapturedResource, CapturedStack } from '../../tools/offline/types';
import { policyNamed } from '../policies/helpers';
import { mockedPassword, ofType, one } from '../infra/graph';
import { validateObject } from '../infra/manifests';

export type Inputs = Record<string, unknown>;

const COMPONENT = 'platform-kit:observability:Observability$';

/** Everything the system pool holds besides the add-ons: the monitoring stack, the api and the migrations Job, and the workers where they share its nodes. */
export function systemPoolFootprint(config: StackConfig): Footprint[] {
  return [...monitoringFootprint(config.observability), ...landingOn('system', config.cluster.nodeGroups, workloadsFootprint(config.app))];
}

export function observabilityResources(s: CapturedStack): CapturedResource[] {
  return s.resources.filter((r) => r.urn.includes(COMPONENT));
}

export function release(s: CapturedStack, chart: string): CapturedResource {
  const found = ofType(s, 'kubernetes:helm.sh/v3:Release').filter((r) => r.urn.includes(COMPONENT) && r.inputs.chart === chart);
  if (found.length !== 1) throw new Error(`expected one ${chart} release, found ${found.length}`);
  return found[0] as CapturedResource;
}

export const valuesOf = (r: CapturedResource) => r.inputs.values as Inputs;

/** Everything a resource depends on, through dependsOn, inputs and parents, transitively. */
export function closure(s: CapturedStack, r: CapturedResource): Set<string> {
  const byUrn = new Map(s.resources.map((x) => [x.urn, x]));
  const seen = new Set<string>();
  const queue = [r];
  while (queue.length > 0) {
    const cur = queue.shift() as CapturedResource;
    for (const urn of [...cur.dependencies, ...Object.values(cur.propertyDependencies ?? {}).flat(), ...(cur.parent ? [cur.parent] : [])]) {
      if (seen.has(urn)) continue;
      seen.add(urn);
      const next = byUrn.get(urn);
      if (next) queue.push(next);
    }
  }
  return seen;
}

/** A Kubernetes object the program creates directly, rendered as the API server would receive it and validated against its schema (Helm releases and other resources pass). */
export async function validateKubernetesObject(r: CapturedResource): Promise<void> {
  const object = renderObject(r);
  if (object) await validateObject(object);
}

export function describeObservability(get: () => CapturedStack, stack: 'dev' | 'prod'): void {
  const { config } = readStackFile(stack);
  const obs = config.observability;

  it('installs the Prometheus Operator CRDs from their own pinned chart, before anything that needs them', () => {
    const s = get();
    const crds = release(s, 'prometheus-operator-crds');
    expect(crds.inputs).toMatchObject({ version: obs.charts.prometheusOperatorCrds, repositoryOpts: { repo: 'https://prometheus-community.github.io/helm-charts' }, namespace: MONITORING.namespace });
    const kps = release(s, 'kube-prometheus-stack');
    expect(kps.inputs.version).toBe(obs.charts.kubePrometheusStack);
    expect(valuesOf(kps).crds).toEqual({ enabled: false });
    expect(closure(s, kps).has(crds.urn)).toBe(true);
    const customResources = observabilityResources(s).filter((r) => r.type.startsWith('kubernetes:monitoring.coreos.com/'));
    expect(customResources.map((r) => r.type.split(':').pop()).sort()).toEqual([...Array(2).fill('PodMonitor'), ...Array(5).fill('PrometheusRule'), 'ServiceMonitor'].sort());
    for (const r of customResources) expect({ urn: r.urn, dependsOnCrds: r.dependencies.includes(crds.urn) }).toEqual({ urn: r.urn, dependsOnCrds: true });
  });

  it('makes every Kubernetes object and release of the monitoring stack and the workloads wait for all the cluster declares ready, the load balancer controller first among them', () => {
    const s = get();
    const clusterReleases = ofType(s, 'kubernetes:helm.sh/v3:Release').filter((r) => r.urn.includes('platform-kit:cluster:Cluster$'));
    expect(clusterReleases.map((r) => r.inputs.chart).sort()).toEqual(['aws-load-balancer-controller', 'cluster-autoscaler', 'keda', 'metrics-server']);
    const ready = [
      ...ofType(s, 'eks:index:ManagedNodeGroup'),
      ...ofType(s, 'aws:eks/addon:Addon'),
      ...ofType(s, 'aws:eks/accessPolicyAssociation:AccessPolicyAssociation'),
      ...clusterReleases,
    ];
    const workloads = s.resources.filter((r) => r.urn.includes('platform-kit:workloads:Workloads$') && r.type.startsWith('kubernetes:'));
    expect(workloads.length).toBeGreaterThan(25);
    const kubernetesObjects = [...observabilityResources(s).filter((r) => r.type.startsWith('kubernetes:')), ...workloads];
    for (const r of kubernetesObjects) {
      const deps = closure(s, r);
      expect({ urn: r.urn, missing: ready.filter((x) => !deps.has(x.urn)).map((x) => x.name) }).toEqual({ urn: r.urn, missing: [] });
      expect(r.provider?.split('::').slice(0, -1).join('::')).toBe(one(s, 'pulumi:providers:kubernetes').urn);
    }
  });

  it('passes the admission-ordering rule, which reports a chart of the stack that stops waiting for the load balancer controller', async () => {
    const s = get();
    const ordering = async (resources: CapturedResource[]) =>
      (await evaluate({ stack, resources }, { policies: [policyNamed('kubernetes-admission-webhook-ordering')] })).results[0]?.violations ?? [];
    expect(await ordering(s.resources)).toEqual([]);
    const kps = release(s, 'kube-prometheus-stack');
    const detached = { ...kps, dependencies: [], propertyDependencies: {}, parent: undefined };
    expect((await ordering(s.resources.map((r) => (r === kps ? detached : r)))).map((v) => v.message)).toEqual([
      expect.stringContaining('does not wait for the AWS Load Balancer Controller'),
    ]);
  });

  it('pins every chart and renders objects that pass the Kubernetes and prometheus-operator schemas', async () => {
    const s = get();
    expect(Object.fromEntries(['kube-prometheus-stack', 'prometheus-operator-crds', 'loki', 'alloy'].map((c) => [c, release(s, c).inputs.version]))).toEqual({
      'kube-prometheus-stack': obs.charts.kubePrometheusStack,
      'prometheus-operator-crds': obs.charts.prometheusOperatorCrds,
      loki: obs.charts.loki,
      alloy: obs.charts.alloy,
    });
    const objects = observabilityResources(s).filter((r) => renderObject(r) !== undefined);
    expect(objects.length).toBeGreaterThan(20);
    for (const r of objects) await validateKubernetesObject(r);
  });

  it('runs the stack in a restricted namespace and only the node agents in the listed privileged one', () => {
    const s = get();
    const namespaces = Object.fromEntries(observabilityResources(s).filter((r) => r.type === 'kubernetes:core/v1:Namespace').map((r) => [(r.inputs.metadata as Inputs).name, r.inputs.metadata as Inputs]));
    const modes = (enforce: string) => ({ 'pod-security.kubernetes.io/enforce': enforce, 'pod-security.kubernetes.io/audit': 'restricted', 'pod-security.kubernetes.io/warn': 'restricted' });
    expect(namespaces[MONITORING.namespace]?.labels).toMatchObject(modes('restricted'));
    expect(namespaces[MONITORING.nodeAgentsNamespace]?.labels).toMatchObject(modes('privileged'));
    expect((namespaces[MONITORING.nodeAgentsNamespace]?.annotations as Inputs)['platform-kit.io/pod-security-exception']).toMatch(/node-exporter/);
    expect(valuesOf(release(s, 'kube-prometheus-stack'))['prometheus-node-exporter']).toMatchObject({ namespaceOverride: MONITORING.nodeAgentsNamespace });
    expect(release(s, 'alloy').inputs.namespace).toBe(MONITORING.nodeAgentsNamespace);
    for (const chart of ['kube-prometheus-stack', 'loki', 'prometheus-operator-crds']) expect(release(s, chart).inputs.namespace).toBe(MONITORING.namespace);
  });

  it('handles EKS: no scraping of the managed control plane, kube-proxy through the node agent, every monitor and rule selected', () => {
    const s = get();
    const v = valuesOf(release(s, 'kube-prometheus-stack'));
    expect(v).toMatchObject({ kubeControllerManager: { enabled: false }, kubeScheduler: { enabled: false }, kubeEtcd: { enabled: false }, kubeProxy: { enabled: false } });
    expect((v.defaultRules as Inputs).rules).toMatchObject({ etcd: false, kubeControllerManager: false, kubeSchedulerAlerting: false });
    expect((v.prometheus as Inputs).prometheusSpec).toMatchObject({
      serviceMonitorSelectorNilUsesHelmValues: false,
      podMonitorSelectorNilUsesHelmValues: false,
      ruleSelectorNilUsesHelmValues: false,
      serviceMonitorNamespaceSelector: {},
      enableRemoteWriteReceiver: true,
    });
    const alloy = ((valuesOf(release(s, 'alloy')).alloy as Inputs).configMap as Inputs).content as string;
    expect(alloy).toContain('"__address__" = "127.0.0.1:10249"');
    expect(alloy).toContain('job_name   = "kube-proxy"');
    expect(alloy).toContain(`url = "http://${MONITORING.prometheusService}.${MONITORING.namespace}.svc:9090/api/v1/write"`);
    expect(valuesOf(release(s, 'alloy')).controller).toMatchObject({ type: 'daemonset', hostNetwork: true });
  });

  it('sets Prometheus retention and storage and Alertmanager replicas from the stack config', () => {
    const s = get();
    const v = valuesOf(release(s, 'kube-prometheus-stack'));
    const spec = (v.prometheus as Inputs).prometheusSpec as Inputs;
    expect(spec).toMatchObject({ replicas: obs.prometheus.replicas, retention: `${obs.prometheus.retentionDays}d`, externalLabels: { cluster: stack } });
    expect(JSON.stringify(spec.storageSpec)).toContain(`"storage":"${obs.prometheus.storageGiB}Gi"`);
    expect(((v.alertmanager as Inputs).alertmanagerSpec as Inputs).replicas).toBe(obs.alertmanager.replicas);
  });

  it('configures Alertmanager exactly as `npm run rules` renders it, credentials only as mounted secret files', () => {
    const s = get();
    const am = (valuesOf(release(s, 'kube-prometheus-stack')).alertmanager as Inputs);
    expect(parse(am.stringConfig as string)).toEqual(renderAlerting(obs, new Set()).alertmanager);
    expect((am.alertmanagerSpec as Inputs).secrets).toEqual(['alertmanager-receivers']);
    const receivers = one(s, 'kubernetes:core/v1:Secret', 'observability-alertmanager-receivers');
    expect(receivers.secretPaths).toContain('stringData');
  });

  it('gives Grafana a generated admin password kept secret, Prometheus and Loki as data sources and no anonymous access', () => {
    const s = get();
    const grafana = valuesOf(release(s, 'kube-prometheus-stack')).grafana as Inputs;
    expect(grafana.admin).toEqual({ existingSecret: 'grafana-admin', userKey: 'admin-user', passwordKey: 'admin-password' });
    expect((grafana['grafana.ini'] as Inputs)['auth.anonymous']).toEqual({ enabled: false });
    expect(grafana.additionalDataSources).toEqual([expect.objectContaining({ type: 'loki', uid: 'loki', url: 'http://loki.monitoring.svc:3100' })]);
    expect((grafana.sidecar as Inputs).datasources).toMatchObject({ enabled: true, uid: 'prometheus' });
    const admin = one(s, 'kubernetes:core/v1:Secret', 'observability-grafana-admin');
    expect(admin.secretPaths.some((p) => p.startsWith('stringData'))).toBe(true);
    const password = mockedPassword('observability-grafana-admin-password', 32);
    const visible = JSON.stringify(s.resources.map((r) => (r.secretPaths.length ? { ...r, inputs: '[has secrets]' } : r)));
    expect(visible).not.toContain(password);
    expect(JSON.stringify(s.outputs)).not.toContain(password);
    expect(s.outputs.grafanaAdminPassword).toEqual({ secret: true });
  });

  it('scrapes the api through a ServiceMonitor and the worker through a PodMonitor, from the contract\'s labels, ports and paths', () => {
    const s = get();
    const sm = one(s, 'kubernetes:monitoring.coreos.com/v1:ServiceMonitor').inputs.spec as Inputs;
    expect(sm).toEqual({
      jobLabel: 'app.kubernetes.io/name',
      namespaceSelector: { matchNames: [config.app.namespace] },
      selector: { matchLabels: SCRAPE_TARGETS.api.podLabels },
      endpoints: [{ port: SCRAPE_TARGETS.api.portName, path: '/metrics', interval: '30s', scrapeTimeout: '10s' }],
    });
    const pm = one(s, 'kubernetes:monitoring.coreos.com/v1:PodMonitor', 'observability-worker-pod-monitor').inputs.spec as Inputs;
    expect(pm).toMatchObject({ selector: { matchLabels: SCRAPE_TARGETS.worker.podLabels }, podMetricsEndpoints: [{ port: SCRAPE_TARGETS.worker.portName, path: '/metrics' }] });
  });

  it('ships the rules and dashboards generated from the contract', () => {
    const s = get();
    const rules = ofType(s, 'kubernetes:monitoring.coreos.com/v1:PrometheusRule');
    const expected = renderAlerting(obs, new Set()).ruleGroups;
    expect(rules.map((r) => (r.inputs.spec as { groups: unknown[] }).groups[0]).sort((a, b) => String((a as Inputs).name).localeCompare(String((b as Inputs).name)))).toEqual(
      [...expected].sort((a, b) => a.name.localeCompare(b.name)),
    );
    for (const r of rules) expect((r.inputs.metadata as Inputs).labels).toEqual({ [MONITORING.rulesLabel]: 'true' });
    const dashboards = observabilityResources(s).filter((r) => r.name.startsWith('observability-dashboard-'));
    expect(dashboards.map((d) => d.name).sort()).toEqual(['api', 'jobs', 'logs', 'relay', 'slos', 'workers'].map((n) => `observability-dashboard-platform-${n}`));
    for (const d of dashboards) {
      expect((d.inputs.metadata as Inputs).labels).toEqual({ grafana_dashboard: '1' });
      const [json] = Object.values(d.inputs.data as Record<string, string>);
      expect((JSON.parse(json as string) as { panels: unknown[] }).panels.length).toBeGreaterThan(1);
    }
  });

  it('places the stack on the system pool and the node agents on every node, as the cluster does, and the system pool fits it', () => {
    const s = get();
    const v = valuesOf(release(s, 'kube-prometheus-stack'));
    const system = { nodeSelector: PLACEMENT.system.nodeSelector, tolerations: PLACEMENT.system.tolerations };
    const onPool = (values: unknown) => ({ nodeSelector: (values as Inputs).nodeSelector, tolerations: (values as Inputs).tolerations });
    for (const part of [(v.prometheus as Inputs).prometheusSpec, (v.alertmanager as Inputs).alertmanagerSpec, v.prometheusOperator, v.grafana, v['kube-state-metrics'], valuesOf(release(s, 'loki')).singleBinary]) {
      expect(onPool(part)).toEqual(system);
    }
    // Every node, the tainted jobs pool's included: the same tolerations the cluster hands its DaemonSets.
    expect((v['prometheus-node-exporter'] as Inputs).tolerations).toEqual(EVERY_NODE_TOLERATIONS);
    expect((valuesOf(release(s, 'alloy')).controller as Inputs).tolerations).toEqual(EVERY_NODE_TOLERATIONS);
    const labelled = ofType(s, 'eks:index:ManagedNodeGroup').filter((g) => Object.entries(PLACEMENT.system.nodeSelector).every(([k, val]) => (g.inputs.labels as Record<string, string>)[k] === val));
    expect(labelled.map((g) => g.name).sort()).toEqual(config.cluster.nodeGroups.filter((g) => g.roles.includes('system')).map((g) => `cluster-${g.name}`).sort());
    expect(capacityReport(poolAtMinimum('system', config.cluster.nodeGroups), systemPoolFootprint(config))).toMatchObject({ fits: true });
    // What the check sums for the api is what its Deployment asks the scheduler for, on the pool it names.
    const api = s.resources.find((r) => r.type === 'kubernetes:apps/v1:Deployment' && r.name === 'workloads-api') as CapturedResource;
    const pod = ((api.inputs.spec as Inputs).template as Inputs).spec as { nodeSelector: Record<string, string>; containers: { resources: { requests: { memory: string } } }[] };
    expect(pod.nodeSelector).toEqual(PLACEMENT.system.nodeSelector);
    expect(systemPoolFootprint(config).find((f) => f.component === 'api')?.memoryMiB).toBe(memoryMiB(pod.containers[0]?.resources.requests.memory ?? ''));
  });

  it('scrapes KEDA on the port its NetworkPolicies admit from the monitoring namespace', () => {
    const s = get();
    const spec = one(s, 'kubernetes:monitoring.coreos.com/v1:PodMonitor', 'observability-keda-pod-monitor').inputs.spec as Inputs;
    const admitted = [...new Set(KEDA_INGRESS.filter((r) => r.from === 'prometheus').map((r) => r.port))];
    expect(spec.podMetricsEndpoints).toEqual([expect.objectContaining({ targetPort: admitted[0], path: '/metrics' })]);
    expect(admitted).toHaveLength(1);
    expect(spec.namespaceSelector).toEqual({ matchNames: [KEDA_NAMESPACE] });
    const scraped = ((spec.selector as Inputs).matchExpressions as { values: string[] }[])[0]?.values;
    const policed = ofType(s, 'kubernetes:networking.k8s.io/v1:NetworkPolicy')
      .filter((r) => r.name.startsWith('cluster-keda-netpol-'))
      .map((p) => (((p.inputs.spec as Inputs).podSelector as Inputs).matchLabels as Record<string, string> | undefined)?.app)
      .filter((app): app is string => app !== undefined);
    expect([...(scraped ?? [])].sort()).toEqual([...new Set(policed)].sort());
  });

  it('admits only the app namespace to Prometheus besides the monitoring namespace itself and the VPC', () => {
    const s = get();
    const policy = one(s, 'kubernetes:networking.k8s.io/v1:NetworkPolicy', 'observability-netpol').inputs.spec as { ingress: { from: Inputs[] }[] };
    const namespacePeers = policy.ingress.flatMap((rule) => rule.from).filter((peer) => 'namespaceSelector' in peer);
    expect(namespacePeers).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': config.app.namespace } } }]);
  });

  it('agrees with the cluster on the monitoring namespace KEDA admits to its metrics ports', () => {
    const s = get();
    const namespaces = observabilityResources(s).filter((r) => r.type === 'kubernetes:core/v1:Namespace').map((r) => (r.inputs.metadata as Inputs).name);
    expect(namespaces).toContain(MONITORING.namespace);
    const kedaPolicies = ofType(s, 'kubernetes:networking.k8s.io/v1:NetworkPolicy').filter((r) => r.name.startsWith('cluster-keda-netpol-'));
    const prometheusPeers = kedaPolicies.flatMap((p) => ((p.inputs.spec as Inputs).ingress as { from: Inputs[]; ports: { port: number }[] }[]).filter((rule) => rule.ports.some((port) => port.port === 8080)).flatMap((rule) => rule.from));
    expect(prometheusPeers).toHaveLength(KEDA_INGRESS.filter((r) => r.from === 'prometheus').length);
    for (const peer of prometheusPeers) expect(peer).toEqual({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': MONITORING.namespace } } });
  });

  it('records the stack for `platform doctor --stack`', () => {
    const s = get();
    const record = JSON.parse((one(s, 'kubernetes:core/v1:ConfigMap', 'observability-stack-record').inputs.data as Record<string, string>)['stack.json'] as string) as Inputs;
    expect(record).toMatchObject({ stack, appNamespace: config.app.namespace, monitoringNamespace: MONITORING.namespace, prometheusService: MONITORING.prometheusService });
    expect(record.alerts).toEqual(expect.arrayContaining(['ApiAvailabilityFastBurn', 'WorkerAbsent']));
  });
}
