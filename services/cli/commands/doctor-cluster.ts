import { METRICS, MONITORING, QUEUES, shareOfBacklogQuery } from '../../contract';
import { KubeError, type KubeClient } from '../kube';
import type { CheckResult, Verdict } from './check-result';

/** What the Pulumi program recorded in the cluster about the stack it deployed (observability component). */
export interface StackRecord {
  stack: string;
  appNamespace: string;
  monitoringNamespace: string;
  prometheusService: string;
  prometheusPort: number;
  ruleGroups: string[];
  alerts: string[];
}

/** Custom resources the stack's objects are made of. */
export const REQUIRED_CRDS = [
  'servicemonitors.monitoring.coreos.com',
  'podmonitors.monitoring.coreos.com',
  'prometheusrules.monitoring.coreos.com',
  'prometheuses.monitoring.coreos.com',
  'alertmanagers.monitoring.coreos.com',
  'scaledobjects.keda.sh',
] as const;

interface ScaledObject {
  metadata: { name: string };
  spec?: { scaleTargetRef?: { name?: string; kind?: string }; minReplicaCount?: number; triggers?: { type?: string; metadata?: Record<string, string> }[] };
}

interface PrometheusRules {
  data: { groups: { name: string; rules: { name: string; type: string; health: string; lastError?: string }[] }[] };
}

interface PrometheusTargets {
  data: { activeTargets: { labels: Record<string, string>; health: string; lastError?: string }[] };
}

export interface ClusterCheckOptions {
  stack: string;
  /** Prometheus base URL; through the API server's service proxy when unset. */
  prometheusUrl?: string;
  /** Fetches JSON from a Prometheus URL outside the API server (only with prometheusUrl). */
  fetchJson?: <T>(url: string) => Promise<T>;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** What a postgresql trigger must count, for the messages that say it does not. */
export const BACKLOG_QUERY_SHAPE = 'the contract\'s backlogQuery: jobs queued or running, a user\'s jobs in entries of their own counted up to their share of the slots';

/**
 * Does this KEDA trigger scale on the platform's queue? A PostgreSQL trigger counting the
 * contract's backlog (what the stacks deploy) or a Prometheus trigger on the contract's
 * queue-depth metric (queue entries: a worker's slots hold entries, so it measures their
 * load too, though jobs that share entries count an entry each). A Redis list trigger is
 * refused: BullMQ's wait list holds neither prioritized nor delayed jobs, and jobs the
 * relay has not yet handed to Redis are in no list.
 */
export function triggerProblem(trigger: { type?: string; metadata?: Record<string, string> }): string | undefined {
  const meta = trigger.metadata ?? {};
  if (trigger.type === 'postgresql') {
    return shareOfBacklogQuery(meta.query ?? '') !== undefined ? undefined : `postgresql trigger counts ${JSON.stringify(meta.query ?? '(no query)')}, not the backlog (${BACKLOG_QUERY_SHAPE})`;
  }
  if (trigger.type === 'redis' || trigger.type === 'redis-cluster') {
    return `redis trigger reads list ${meta.listName ?? '(none)'}, which under-counts the backlog (prioritized, delayed and not-yet-relayed jobs are in no list): scale on PostgreSQL (${BACKLOG_QUERY_SHAPE})`;
  }
  if (trigger.type === 'prometheus') {
    return (meta.query ?? '').includes(METRICS.queueDepth) ? undefined : `prometheus trigger query does not read ${METRICS.queueDepth}`;
  }
  return `trigger type ${trigger.type ?? '(none)'} does not read the queue`;
}

/**
 * What a stack adds to a cluster, checked in the order an operator would look: the
 * program's record of the stack (and that it is this stack), the CRDs, the worker's KEDA
 * scaler against the queue, the rules shipped and loaded by Prometheus, scrape targets,
 * and Alertmanager. Each check fails alone, with the reason.
 */
export async function diagnoseCluster(kube: KubeClient, options: ClusterCheckOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const add = (check: string, verdict: Verdict, detail: string) => results.push({ check, verdict, detail });

  try {
    const version = await kube.get<{ gitVersion?: string }>('/version');
    add('cluster', 'ok', `${kube.server} answers (Kubernetes ${version.gitVersion ?? 'unknown'})`);
  } catch (error) {
    add('cluster', 'fail', `${kube.server} unreachable: ${message(error)}`);
    return results;
  }

  let record: StackRecord | undefined;
  try {
    const cm = await kube.get<{ data?: Record<string, string> }>(`/api/v1/namespaces/${MONITORING.namespace}/configmaps/${MONITORING.stackConfigMap}`);
    record = JSON.parse(cm.data?.['stack.json'] ?? '{}') as StackRecord;
    if (record.stack === options.stack) add('stack', 'ok', `this cluster runs stack ${record.stack} (app namespace ${record.appNamespace})`);
    else add('stack', 'fail', `this cluster runs stack ${record.stack || '(unknown)'}, not ${options.stack}: check your kube context`);
  } catch (error) {
    add('stack', 'fail', error instanceof KubeError && error.status === 404 ? `no ${MONITORING.namespace}/${MONITORING.stackConfigMap}: the observability stack is not deployed (pulumi up -s ${options.stack})` : `could not read the stack record: ${message(error)}`);
  }

  const missing: string[] = [];
  for (const crd of REQUIRED_CRDS) {
    try {
      await kube.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd}`);
    } catch (error) {
      if (error instanceof KubeError && error.status === 404) missing.push(crd);
      else missing.push(`${crd} (${message(error)})`);
    }
  }
  add('crds', missing.length === 0 ? 'ok' : 'fail', missing.length === 0 ? `${REQUIRED_CRDS.length} present` : `missing: ${missing.join(', ')}`);

  if (record?.appNamespace) {
    try {
      const list = await kube.get<{ items: ScaledObject[] }>(`/apis/keda.sh/v1alpha1/namespaces/${record.appNamespace}/scaledobjects`);
      const workers = list.items.filter((so) => (so.spec?.scaleTargetRef?.kind ?? 'Deployment') === 'Deployment');
      const matching = workers.filter((so) => (so.spec?.triggers ?? []).some((t) => triggerProblem(t) === undefined));
      if (matching.length > 0) {
        const so = matching[0] as ScaledObject;
        // KEDA's own default minimum is 0.
        const min = so.spec?.minReplicaCount ?? 0;
        const scales = `${so.metadata.name} scales ${so.spec?.scaleTargetRef?.name ?? '?'} on the ${QUEUES.jobs} queue (min ${min})`;
        if (min >= 1) add('scaler', 'ok', scales);
        else add('scaler', 'fail', `${scales}: idle workers scale away, so WorkerAbsent pages and the alerts on the worker's metrics go blind; the stack config keeps at least 1 (platform-kit:app.worker.replicas.min), so restore it with pulumi up`);
      } else if (workers.length === 0) add('scaler', 'fail', `no KEDA ScaledObject in ${record.appNamespace}: workers do not scale with the queue`);
      else add('scaler', 'fail', workers.map((so) => `${so.metadata.name}: ${(so.spec?.triggers ?? []).map((t) => triggerProblem(t)).join('; ') || 'no triggers'}`).join(' | '));
    } catch (error) {
      add('scaler', 'fail', `could not list ScaledObjects: ${message(error)}`);
    }
  } else add('scaler', 'fail', 'unknown app namespace (no stack record)');

  let shipped: string[] = [];
  try {
    const rules = await kube.get<{ items: { metadata: { name: string } }[] }>(
      `/apis/monitoring.coreos.com/v1/namespaces/${MONITORING.namespace}/prometheusrules?labelSelector=${encodeURIComponent(`${MONITORING.rulesLabel}=true`)}`,
    );
    shipped = rules.items.map((r) => r.metadata.name);
    const expected = record?.ruleGroups ?? [];
    const absent = expected.filter((g) => !shipped.includes(g));
    add('rules-shipped', absent.length === 0 && shipped.length > 0 ? 'ok' : 'fail', absent.length === 0 ? `${shipped.length} PrometheusRule objects` : `missing PrometheusRule: ${absent.join(', ')}`);
  } catch (error) {
    add('rules-shipped', 'fail', `could not list PrometheusRules: ${message(error)}`);
  }

  const prometheus = <T>(path: string): Promise<T> => {
    if (options.prometheusUrl !== undefined && options.fetchJson) return options.fetchJson<T>(`${options.prometheusUrl.replace(/\/+$/, '')}${path}`);
    const service = `http:${record?.prometheusService ?? MONITORING.prometheusService}:${record?.prometheusPort ?? MONITORING.prometheusPort}`;
    return kube.get<T>(`/api/v1/namespaces/${MONITORING.namespace}/services/${service}/proxy${path}`);
  };

  try {
    const loaded = await prometheus<PrometheusRules>('/api/v1/rules');
    const groups = new Map(loaded.data.groups.map((g) => [g.name, g]));
    const expectedGroups = record?.ruleGroups ?? shipped;
    const notLoaded = expectedGroups.filter((g) => !groups.has(g));
    const alerts = new Set(loaded.data.groups.flatMap((g) => g.rules.filter((r) => r.type === 'alerting').map((r) => r.name)));
    const missingAlerts = (record?.alerts ?? []).filter((a) => !alerts.has(a));
    const broken = loaded.data.groups.filter((g) => expectedGroups.includes(g.name)).flatMap((g) => g.rules.filter((r) => r.health === 'err').map((r) => `${r.name}: ${r.lastError ?? 'error'}`));
    if (notLoaded.length > 0) add('rules-loaded', 'fail', `Prometheus has not loaded ${notLoaded.join(', ')} (check its ruleSelector)`);
    else if (missingAlerts.length > 0) add('rules-loaded', 'fail', `alerts missing from Prometheus: ${missingAlerts.join(', ')}`);
    else if (broken.length > 0) add('rules-loaded', 'fail', `rules failing to evaluate: ${broken.join('; ')}`);
    else add('rules-loaded', 'ok', `${expectedGroups.length} groups, ${record?.alerts.length ?? alerts.size} alerts loaded and evaluating`);
  } catch (error) {
    add('rules-loaded', 'fail', `could not ask Prometheus: ${message(error)}`);
  }

  try {
    const targets = await prometheus<PrometheusTargets>('/api/v1/targets?state=active');
    for (const job of ['api', 'worker']) {
      const mine = targets.data.activeTargets.filter((t) => t.labels.job === job);
      const up = mine.filter((t) => t.health === 'up').length;
      if (mine.length === 0) add(`scrape-${job}`, 'warn', `Prometheus has no ${job} target: is the ${job} deployed with the contract's labels?`);
      else if (up === 0) add(`scrape-${job}`, 'fail', `${mine.length} ${job} target(s), none up: ${mine[0]?.lastError ?? ''}`.trim());
      else add(`scrape-${job}`, 'ok', `${up}/${mine.length} ${job} target(s) up`);
    }
  } catch (error) {
    add('scrape', 'fail', `could not ask Prometheus: ${message(error)}`);
  }

  try {
    const am = await prometheus<{ data: { activeAlertmanagers: unknown[] } }>('/api/v1/alertmanagers');
    const n = am.data.activeAlertmanagers.length;
    add('alertmanager', n > 0 ? 'ok' : 'fail', n > 0 ? `Prometheus sends alerts to ${n} Alertmanager(s)` : 'Prometheus knows no Alertmanager: alerts go nowhere');
  } catch (error) {
    add('alertmanager', 'fail', `could not ask Prometheus: ${message(error)}`);
  }
  return results;
}
