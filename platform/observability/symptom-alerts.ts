import { METRICS, ROUTE_CLASSES, SCRAPE_TARGETS, escapeRegex, type AlertSeverity, type LabelMatcher } from '../../services/contract';
import { oneLine, selector, sumRate } from './promql';
import type { AlertText, AlertingRule } from './rule-types';

interface SymptomAlert extends AlertText {
  alert: string;
  severity: AlertSeverity;
  expr: string;
  for: string;
}

const api: LabelMatcher = { label: 'job', op: '=', value: SCRAPE_TARGETS.api.job };
const worker: LabelMatcher = { label: 'job', op: '=', value: SCRAPE_TARGETS.worker.job };
const anyService: LabelMatcher = { label: 'job', op: '=~', value: `${SCRAPE_TARGETS.api.job}|${SCRAPE_TARGETS.worker.job}` };
const userRoutes: LabelMatcher = { label: 'route', op: '!~', value: ROUTE_CLASSES.operational.map(escapeRegex).join('|') };
const serverErrors: LabelMatcher = { label: 'status', op: '=~', value: '5..' };
const requests = `${METRICS.httpRequestDuration}_count`;

/** Thresholds of the symptom alerts, in one place so the runbooks and tests can quote them. */
export const SYMPTOM_THRESHOLDS = {
  apiErrorBurstRatio: 0.05,
  apiErrorBurstMinRequestsPerSecond: 1,
  backlogAgeSeconds: 600,
  deadLetterGrowthPerHour: 10,
  relayLagSeconds: 60,
  postgresConnectionsRatio: 0.85,
  redisMemoryRatio: 0.85,
} as const;
const T = SYMPTOM_THRESHOLDS;

/**
 * Alerts on causes and symptoms the SLOs cannot see: a service gone entirely (a ratio of
 * nothing is nothing), a backlog nobody starts (time-to-start observes only starts), and the
 * data stores running out of room before users notice.
 */
export const SYMPTOM_ALERTS: readonly SymptomAlert[] = [
  {
    alert: 'ApiAbsent',
    severity: 'page',
    expr: `absent(${selector('up', [api])} == 1)`,
    for: '5m',
    summary: 'No API instance has been scrapeable for 5 minutes.',
    description: 'Prometheus reaches no api pod (job="api"): the API is down, crash-looping, or its Service and ServiceMonitor no longer match. The API SLOs cannot see an outage of this kind, since no requests are recorded at all.',
  },
  {
    alert: 'WorkerAbsent',
    severity: 'page',
    expr: `absent(${selector('up', [worker])} == 1)`,
    for: '5m',
    summary: 'No worker has been scrapeable for 5 minutes.',
    description: 'Prometheus reaches no worker pod (job="worker"): accepted jobs are not running. Jobs stay safe in PostgreSQL and run once a worker is back.',
  },
  {
    alert: 'ApiErrorBurst',
    severity: 'page',
    expr: oneLine(`(
      (${sumRate(requests, [api, userRoutes, serverErrors], '5m')} or vector(0)) / ${sumRate(requests, [api, userRoutes], '5m')}
    ) > ${T.apiErrorBurstRatio} and ${sumRate(requests, [api, userRoutes], '5m')} > ${T.apiErrorBurstMinRequestsPerSecond}`),
    for: '2m',
    summary: 'The API answers more than 5 % of requests with a server error.',
    description: '{{ $value | humanizePercentage }} of API requests over the last 5 minutes ended in a 5xx. A burst this large pages before the availability SLO\'s hourly window would.',
  },
  {
    alert: 'JobBacklogAging',
    severity: 'page',
    expr: `max(${selector(METRICS.queueOldestJobAge, [worker])}) > ${T.backlogAgeSeconds}`,
    for: '5m',
    summary: 'The oldest queued job has waited more than 10 minutes.',
    description: 'A job accepted {{ $value | humanizeDuration }} ago is still queued. Workers are absent, saturated, or not taking work (queue paused, Redis unreachable).',
  },
  {
    alert: 'DeadLetterGrowing',
    severity: 'ticket',
    // The size now is the largest of the last 5 minutes, not the last sample: a scrape a worker
    // missed (it restarted) leaves no sample for a moment, and the alert would start its 10
    // minutes again, or resolve and open a second ticket, while the set grows on.
    expr: `max(max_over_time(${selector(METRICS.deadLetterSize, [worker])}[5m])) - min(min_over_time(${selector(METRICS.deadLetterSize, [worker])}[1h])) > ${T.deadLetterGrowthPerHour}`,
    for: '10m',
    summary: 'More than 10 jobs were dead-lettered within the last hour.',
    description: 'The dead-letter set grew by {{ $value }} jobs in an hour: jobs are failing their last attempt. Find the failing type and cause before replaying them.',
  },
  {
    alert: 'RelayLagHigh',
    severity: 'page',
    expr: `max(${selector(METRICS.relayLag, [anyService])}) > ${T.relayLagSeconds}`,
    for: '5m',
    summary: 'Accepted jobs have been missing from Redis for more than a minute.',
    description: 'The oldest accepted job that Redis does not hold has waited {{ $value | humanizeDuration }}. The relay cannot hand jobs to the queue: Redis is down, full, or was restarted and the sweep is failing.',
  },
  {
    alert: 'PostgresConnectionsNearLimit',
    severity: 'ticket',
    expr: `max(${selector(METRICS.postgresConnections, [worker])}) / max(${selector(METRICS.postgresMaxConnections, [worker])}) > ${T.postgresConnectionsRatio}`,
    for: '10m',
    summary: 'PostgreSQL is using more than 85 % of max_connections.',
    description: '{{ $value | humanizePercentage }} of the server\'s connections are in use. When none is left, new API and worker connections fail and requests error.',
  },
  {
    alert: 'RedisMemoryNearLimit',
    severity: 'page',
    expr: `max(${selector(METRICS.redisMemoryUsed, [worker])}) / max(${selector(METRICS.redisMemoryMax, [worker])}) > ${T.redisMemoryRatio} and max(${selector(METRICS.redisMemoryMax, [worker])}) > 0`,
    for: '10m',
    summary: 'Redis is using more than 85 % of maxmemory.',
    description: 'Redis uses {{ $value | humanizePercentage }} of maxmemory. Its policy is noeviction, so when it is full every enqueue and lock renewal is refused.',
  },
  {
    alert: 'RedisRejectingWrites',
    severity: 'page',
    // Every worker reads the same server-wide count: summing them would multiply it by the workers.
    expr: `max(increase(${selector(METRICS.redisRejectedWrites, [worker])}[5m])) > 0`,
    for: '1m',
    summary: 'Redis is refusing writes: it is out of memory.',
    description: 'Redis answered {{ $value }} commands with OOM in the last 5 minutes. Jobs cannot be enqueued and running jobs cannot renew their locks.',
  },
  {
    alert: 'RedisUnreachable',
    severity: 'page',
    // A worker exports no platform_redis_up until its first check ends (a hung Redis holds it
    // for the command timeout), and no series must not read as "Redis is fine".
    expr: oneLine(`max(${selector(METRICS.redisUp, [worker])}) == 0
      or (max(${selector('up', [worker])}) == 1 unless max(${selector(METRICS.redisUp, [worker])}))`),
    for: '2m',
    summary: 'No worker can reach Redis.',
    description: 'No worker has had an answer from Redis for 2 minutes (its last check failed, or, started meanwhile, it has not had one yet). Nothing is delivered; the API keeps accepting jobs into PostgreSQL and the relay hands them over once Redis is back.',
  },
];

export function symptomAlertRules(runbookUrl: (alert: string) => string): AlertingRule[] {
  return SYMPTOM_ALERTS.map((a) => ({
    alert: a.alert,
    expr: a.expr,
    for: a.for,
    labels: { severity: a.severity },
    annotations: { summary: a.summary, description: a.description, runbook_url: runbookUrl(a.alert) },
  }));
}
