import { DashboardBuilder, RowBuilder, TextBoxVariableBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as LogsPanelBuilder } from '@grafana/grafana-foundation-sdk/logs';
import { DataqueryBuilder as LokiQueryBuilder } from '@grafana/grafana-foundation-sdk/loki';
import { DataqueryBuilder as PromQueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatPanelBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TimeseriesPanelBuilder } from '@grafana/grafana-foundation-sdk/timeseries';
import { METRICS, ROUTE_CLASSES, SCRAPE_TARGETS, SLOS, escapeRegex, type Slo } from '../../services/contract';
import { literal, selector } from './promql';
import { ERROR_RATIO_RECORD, errorRatioExpr } from './slo-rules';

/** Datasource uids the Grafana of this stack provisions (see values/kube-prometheus-stack.ts). */
export const DATASOURCES = {
  prometheus: { type: 'prometheus', uid: 'prometheus' },
  loki: { type: 'loki', uid: 'loki' },
} as const;

/** A dashboard as Grafana's sidecar loads it from a ConfigMap. */
export type DashboardJson = Dashboard & { uid: string };

const api = `job="${SCRAPE_TARGETS.api.job}"`;
const worker = `job="${SCRAPE_TARGETS.worker.job}"`;
const apiOrWorker = `job=~"${SCRAPE_TARGETS.api.job}|${SCRAPE_TARGETS.worker.job}"`;
const userRoutes = `route!~"${ROUTE_CLASSES.operational.map(escapeRegex).join('|')}"`;
const req = `${METRICS.httpRequestDuration}_count`;

interface Query {
  expr: string;
  legend: string;
}

function timeseries(title: string, unit: string, queries: Query[], description?: string): TimeseriesPanelBuilder {
  const panel = new TimeseriesPanelBuilder().title(title).unit(unit).datasource(DATASOURCES.prometheus).span(12).height(8).fillOpacity(10);
  if (description) panel.description(description);
  queries.forEach((q, i) => panel.withTarget(new PromQueryBuilder().expr(q.expr).legendFormat(q.legend).refId(String.fromCharCode(65 + i))));
  return panel;
}

function stat(title: string, unit: string, expr: string, description?: string): StatPanelBuilder {
  const panel = new StatPanelBuilder().title(title).unit(unit).datasource(DATASOURCES.prometheus).span(6).height(5).withTarget(new PromQueryBuilder().expr(expr).instant().refId('A'));
  if (description) panel.description(description);
  return panel;
}

function quantile(q: number, histogram: string, matchers: string, by: string): string {
  return `histogram_quantile(${q}, sum by (le, ${by}) (rate(${histogram}_bucket{${matchers}}[$__rate_interval])))`;
}

function base(uid: string, title: string): DashboardBuilder {
  return new DashboardBuilder(title).uid(uid).tags(['platform-kit', 'generated']).refresh('30s').time({ from: 'now-6h', to: 'now' }).timezone('browser').editable();
}

export function apiDashboard(): DashboardJson {
  return base('platform-api', 'Platform / API')
    .withRow(new RowBuilder('Traffic'))
    .withPanel(timeseries('Requests by route', 'reqps', [{ expr: `sum by (route) (rate(${req}{${api},${userRoutes}}[$__rate_interval]))`, legend: '{{route}}' }]))
    .withPanel(timeseries('Responses by status', 'reqps', [{ expr: `sum by (status) (rate(${req}{${api},${userRoutes}}[$__rate_interval]))`, legend: '{{status}}' }]))
    .withRow(new RowBuilder('Errors'))
    .withPanel(
      timeseries('Server error ratio by route', 'percentunit', [
        { expr: `sum by (route) (rate(${req}{${api},${userRoutes},status=~"5.."}[$__rate_interval])) / sum by (route) (rate(${req}{${api},${userRoutes}}[$__rate_interval]))`, legend: '{{route}}' },
      ]),
    )
    .withPanel(timeseries('Client errors by route', 'reqps', [{ expr: `sum by (route, status) (rate(${req}{${api},status=~"4.."}[$__rate_interval]))`, legend: '{{route}} {{status}}' }]))
    .withRow(new RowBuilder('Latency'))
    .withPanel(timeseries('p95 latency by route', 's', [{ expr: quantile(0.95, METRICS.httpRequestDuration, `${api},${userRoutes}`, 'route'), legend: '{{route}}' }]))
    .withPanel(
      timeseries('Latency quantiles (all user routes)', 's', [0.5, 0.95, 0.99].map((q) => ({ expr: `histogram_quantile(${q}, sum by (le) (rate(${METRICS.httpRequestDuration}_bucket{${api},${userRoutes}}[$__rate_interval])))`, legend: `p${q * 100}` }))),
    )
    .withRow(new RowBuilder('Process'))
    .withPanel(timeseries('CPU per API pod', 'percentunit', [{ expr: `rate(process_cpu_seconds_total{${api}}[$__rate_interval])`, legend: '{{instance}}' }], 'Its API processes together (API_PROCESSES). Near its CPU limit while every route slows: scale the API.'))
    .withPanel(timeseries('Event loop lag p99', 's', [{ expr: `max by (instance) (nodejs_eventloop_lag_p99_seconds{${api}})`, legend: '{{instance}}' }]))
    .withPanel(timeseries('Database pools', 'short', [{ expr: `sum by (pool, state) (${METRICS.dbPoolConnections}{${api}})`, legend: '{{pool}} {{state}}' }], 'The batch pool inserts submitted jobs, the general pool runs everything else. A waiting count above zero means requests queue for a connection.'))
    .build() as DashboardJson;
}

export function jobsDashboard(): DashboardJson {
  // Dead letters and deferrals of lost attempts come from the relay's sweep, in an api process as often as in a worker; cancels from the api.
  const byType = (metric: string, jobs = worker) => `sum by (type) (rate(${metric}{${jobs}}[$__rate_interval]))`;
  return base('platform-jobs', 'Platform / Jobs')
    .withRow(new RowBuilder('Now'))
    .withPanel(stat('Queued, oldest', 's', `max(${METRICS.queueOldestJobAge}{${worker}})`, 'Age of the oldest job PostgreSQL holds as queued.'))
    .withPanel(stat('Entries waiting in Redis', 'short', `sum(${METRICS.queueDepth}{${worker},state=~"waiting|prioritized"})`, 'Queue entries, each one job or up to its type\'s jobsPerQueueEntry (echo: 10).'))
    .withPanel(stat('Entries running', 'short', `sum(${METRICS.queueDepth}{${worker},state="active"})`))
    .withPanel(stat('Dead letters', 'short', `max(${METRICS.deadLetterSize}{${worker}})`, 'Jobs that failed their last attempt; replay with `platform dlq replay`.'))
    .withRow(new RowBuilder('Throughput'))
    .withPanel(
      timeseries('Jobs submitted, started, succeeded', 'ops', [
        { expr: `sum(rate(${METRICS.jobsSubmitted}{${api}}[$__rate_interval]))`, legend: 'submitted' },
        { expr: `sum(rate(${METRICS.jobsStarted}{${worker}}[$__rate_interval]))`, legend: 'started' },
        { expr: `sum(rate(${METRICS.jobsSucceeded}{${worker}}[$__rate_interval]))`, legend: 'succeeded' },
      ]),
    )
    .withPanel(timeseries('Succeeded by type', 'ops', [{ expr: byType(METRICS.jobsSucceeded), legend: '{{type}}' }]))
    .withRow(new RowBuilder('Failures'))
    .withPanel(timeseries('Failed for good by type', 'ops', [{ expr: byType(METRICS.jobsFailed, apiOrWorker), legend: '{{type}}' }]))
    .withPanel(timeseries('Retried by type', 'ops', [{ expr: byType(METRICS.jobsRetried), legend: '{{type}}' }]))
    .withPanel(
      timeseries('Deferred (platform failures, not charged) by what failed', 'ops', [
        { expr: `sum by (dependency) (rate(${METRICS.jobsDeferred}{${apiOrWorker}}[$__rate_interval]))`, legend: '{{dependency}}' },
      ]),
    )
    .withPanel(timeseries('Cancelled by type', 'ops', [{ expr: byType(METRICS.jobsCancelled, apiOrWorker), legend: '{{type}}' }]))
    .withPanel(timeseries('Dead-letter set', 'short', [{ expr: `max(${METRICS.deadLetterSize}{${worker}})`, legend: 'dead letters' }]))
    .withRow(new RowBuilder('Timing'))
    .withPanel(timeseries('p95 duration by type', 's', [{ expr: quantile(0.95, METRICS.jobDuration, `${worker},outcome="succeeded"`, 'type'), legend: '{{type}}' }]))
    .withPanel(timeseries('p95 time to start by type', 's', [{ expr: quantile(0.95, METRICS.jobTimeToStart, worker, 'type'), legend: '{{type}}' }]))
    .withPanel(timeseries('Queue entries by state', 'short', [{ expr: `sum by (state) (${METRICS.queueDepth}{${worker}})`, legend: '{{state}}' }]))
    .withPanel(timeseries('Oldest queued job', 's', [{ expr: `max(${METRICS.queueOldestJobAge}{${worker}})`, legend: 'age' }]))
    .build() as DashboardJson;
}

export function workersDashboard(): DashboardJson {
  return base('platform-workers', 'Platform / Worker saturation')
    .withRow(new RowBuilder('Slots'))
    .withPanel(
      timeseries(
        'Busy slots',
        'percentunit',
        [{ expr: `sum(${METRICS.queueDepth}{${worker},state="active"}) / sum(${METRICS.workerConcurrency}{${worker}})`, legend: 'busy' }],
        'Running queue entries over the slots of every live worker (WORKER_CONCURRENCY entries each). Near 100 % with a growing backlog: scale workers.',
      ),
    )
    .withPanel(timeseries('Workers up', 'short', [{ expr: `sum(up{${worker}})`, legend: 'workers' }]))
    .withPanel(
      timeseries(
        'Memory budgets held',
        'percentunit',
        [{ expr: `max by (budget) (${METRICS.workerMemoryHeld}{${worker}} / ${METRICS.workerMemoryBudget}{${worker}})`, legend: '{{budget}}' }],
        'The most any worker holds of its memory budgets: input (WORKER_INPUT_BUDGET_BYTES, large job inputs), file (WORKER_FILE_MEMORY_BUDGET_BYTES, what file jobs hold that grows with their file). Above 100 %: one job needing more than the whole budget runs alone.',
      ),
    )
    .withPanel(
      timeseries(
        'Jobs waiting for memory',
        'short',
        [{ expr: `sum by (budget) (${METRICS.workerMemoryWaiting}{${worker}})`, legend: '{{budget}}' }],
        'Deliveries holding a slot while they wait for room in their worker\'s memory budget; still queued, their attempts not charged. More workers run more of them at once.',
      ),
    )
    .withRow(new RowBuilder('Process'))
    .withPanel(timeseries('CPU per worker', 'percentunit', [{ expr: `rate(process_cpu_seconds_total{${worker}}[$__rate_interval])`, legend: '{{instance}}' }]))
    .withPanel(timeseries('Event loop lag p99', 's', [{ expr: `max by (instance) (nodejs_eventloop_lag_p99_seconds{${worker}})`, legend: '{{instance}}' }]))
    .withPanel(timeseries('Resident memory', 'bytes', [{ expr: `process_resident_memory_bytes{${worker}}`, legend: '{{instance}}' }]))
    .withPanel(timeseries('Database pools', 'short', [{ expr: `sum by (pool, state) (${METRICS.dbPoolConnections}{${worker}})`, legend: '{{pool}} {{state}}' }], 'The batch pool writes job states, the general pool everything else. A waiting count above zero means work queues for a connection.'))
    .build() as DashboardJson;
}

export function relayDashboard(): DashboardJson {
  return base('platform-relay', 'Platform / Relay and data stores')
    .withRow(new RowBuilder('Relay'))
    .withPanel(timeseries('Relay lag', 's', [{ expr: `max(${METRICS.relayLag}{job=~"${SCRAPE_TARGETS.api.job}|${SCRAPE_TARGETS.worker.job}"})`, legend: 'oldest accepted job missing from Redis' }]))
    .withPanel(timeseries('Handed to Redis by path', 'ops', [{ expr: `sum by (path) (rate(${METRICS.relayEnqueued}[$__rate_interval]))`, legend: '{{path}}' }], 'submit: right after commit; sweep: repaired by the reconciler; requeue: retries and replays.'))
    .withRow(new RowBuilder('Redis'))
    .withPanel(
      timeseries('Redis memory', 'bytes', [
        { expr: `max(${METRICS.redisMemoryUsed}{${worker}})`, legend: 'used' },
        { expr: `max(${METRICS.redisMemoryMax}{${worker}})`, legend: 'maxmemory' },
      ]),
    )
    .withPanel(
      timeseries('Redis health', 'short', [
        { expr: `max(${METRICS.redisUp}{${worker}})`, legend: 'reachable' },
        // Every worker reads the same server count.
        { expr: `max(increase(${METRICS.redisRejectedWrites}{${worker}}[$__rate_interval]))`, legend: 'writes refused (OOM)' },
      ]),
    )
    .withRow(new RowBuilder('PostgreSQL'))
    .withPanel(
      timeseries('PostgreSQL connections', 'short', [
        { expr: `max(${METRICS.postgresConnections}{${worker}})`, legend: 'in use' },
        { expr: `max(${METRICS.postgresMaxConnections}{${worker}})`, legend: 'max_connections' },
      ]),
    )
    .withPanel(
      timeseries(
        'API processes refusing requests',
        'short',
        [{ expr: `count(${METRICS.postgresAvailable}{${api}} == 0) or vector(0)`, legend: 'PostgreSQL found away' }],
        'API processes that answer requests needing PostgreSQL 503 at once: a request found it away, and it has not answered a probe since.',
      ),
    )
    .build() as DashboardJson;
}

export function sloDashboard(slos: readonly Slo[] = SLOS): DashboardJson {
  const builder = base('platform-slos', 'Platform / SLOs').time({ from: 'now-7d', to: 'now' });
  for (const slo of slos) {
    const budget = literal(1 - slo.objective);
    const onSlo = (record: string) => selector(record, [{ label: 'slo', op: '=', value: slo.name }]);
    builder
      .withRow(new RowBuilder(`${slo.title}: ${literal(slo.objective * 100)} % over 30d`))
      .withPanel(stat('Error budget left (30d)', 'percentunit', `1 - (${errorRatioExpr(slo, '30d')}) / ${budget}`, slo.description).span(6))
      .withPanel(stat('Burn rate (1h)', 'short', `${onSlo(ERROR_RATIO_RECORD('1h'))} / ${budget}`, 'Budget spent per hour relative to a steady pace; above 14.4 pages.').span(6))
      .withPanel(
        timeseries(
          'Burn rate by window',
          'short',
          ['5m', '1h', '6h', '3d'].map((w) => ({ expr: `${onSlo(ERROR_RATIO_RECORD(w))} / ${budget}`, legend: w })),
        ),
      );
  }
  return builder.build() as DashboardJson;
}

/** Logs of the api and worker, filtered by request or job id (the services log both on every line). */
export function logsDashboard(namespace: string): DashboardJson {
  const stream = `{namespace="${namespace}"}`;
  return base('platform-logs', 'Platform / Logs')
    .withVariable(new TextBoxVariableBuilder('requestId').label('Request id').defaultValue(''))
    .withVariable(new TextBoxVariableBuilder('jobId').label('Job id').defaultValue(''))
    .withPanel(
      new TimeseriesPanelBuilder()
        .title('Errors and warnings by service')
        .datasource(DATASOURCES.loki)
        .span(24)
        .height(6)
        .withTarget(new LokiQueryBuilder().expr(`sum by (service, level) (count_over_time(${stream} | json | level=~"warn|error|fatal" [$__auto]))`).legendFormat('{{service}} {{level}}').refId('A')),
    )
    .withPanel(
      new LogsPanelBuilder()
        .title('Log lines (filter with the request and job id boxes)')
        .datasource(DATASOURCES.loki)
        .span(24)
        .height(16)
        .showTime(true)
        .wrapLogMessage(true)
        .prettifyLogMessage(true)
        .enableLogDetails(true)
        .withTarget(new LokiQueryBuilder().expr(`${stream} | json | requestId=~"$requestId.*" | jobId=~"$jobId.*"`).refId('A')),
    )
    .build() as DashboardJson;
}

/** Every dashboard the stack ships, in the order Grafana lists them. */
export function platformDashboards(appNamespace = 'platform'): DashboardJson[] {
  return [apiDashboard(), jobsDashboard(), workersDashboard(), relayDashboard(), sloDashboard(), logsDashboard(appNamespace)];
}
