import { API_PREFIX, IN_CLUSTER_PATHS, PATHS, PORTS } from './http';

/**
 * Metric names, shared by the services that emit them, the dashboards that plot them and
 * the alert rules that page on them, so a rename cannot silently break an alert.
 */
export const METRICS = {
  httpRequestDuration: 'http_request_duration_seconds',
  jobsSubmitted: 'platform_jobs_submitted_total',
  jobsStarted: 'platform_jobs_started_total',
  jobsSucceeded: 'platform_jobs_succeeded_total',
  jobsFailed: 'platform_jobs_failed_total',
  jobsRetried: 'platform_jobs_retried_total',
  /** Attempts that failed on the platform's infrastructure and were queued again without being charged, by type and by what failed. */
  jobsDeferred: 'platform_jobs_deferred_total',
  /** Deliveries held back because their user already ran JOBS_RUNNING_PER_USER jobs, by type: how often one user's load met the cap. */
  jobsHeld: 'platform_jobs_held_total',
  jobsCancelled: 'platform_jobs_cancelled_total',
  /** Runs a worker stopped because their queue lock ran out, by cause (LOCK_LAPSE_CAUSES): only a `worker` lapse counts towards a crash loop. */
  jobLockLapses: 'platform_job_lock_lapses_total',
  jobDuration: 'platform_job_duration_seconds',
  jobTimeToStart: 'platform_job_time_to_start_seconds',
  queueDepth: 'platform_queue_depth',
  /** Age of the oldest job PostgreSQL holds as queued: how long the backlog has been waiting. */
  queueOldestJobAge: 'platform_queue_oldest_job_age_seconds',
  relayLag: 'platform_relay_lag_seconds',
  relayEnqueued: 'platform_relay_enqueued_total',
  deadLetterSize: 'platform_dead_letter_jobs',
  dbPoolConnections: 'platform_db_pool_connections',
  /** Server-side backends of the whole PostgreSQL instance (every client, not only this pool). */
  postgresConnections: 'platform_postgres_connections',
  postgresMaxConnections: 'platform_postgres_max_connections',
  /** 0 while the API answers requests that need PostgreSQL 503 at once, because one found it away and no probe has had an answer since. */
  postgresAvailable: 'platform_postgres_available',
  redisUp: 'platform_redis_up',
  redisMemoryUsed: 'platform_redis_memory_used_bytes',
  /** Redis `maxmemory`; 0 means unlimited (a local redis-server), never the case on ElastiCache. */
  redisMemoryMax: 'platform_redis_memory_max_bytes',
  /** Writes Redis refused for lack of memory (`errorstat_OOM`): with noeviction, lost enqueues and lock renewals. */
  redisRejectedWrites: 'platform_redis_rejected_writes_total',
  workerLastActivity: 'platform_worker_last_activity_timestamp_seconds',
  /** Jobs one worker process runs at once (WORKER_CONCURRENCY), the denominator of worker saturation. */
  workerConcurrency: 'platform_worker_concurrency',
  /** Bytes a worker's memory budget lets its jobs hold at once, by budget (MEMORY_BUDGETS). */
  workerMemoryBudget: 'platform_worker_memory_budget_bytes',
  /** Bytes of a worker's memory budget its jobs hold now, by budget. */
  workerMemoryHeld: 'platform_worker_memory_held_bytes',
  /** Deliveries waiting now for room in a worker's memory budget, by budget. */
  workerMemoryWaiting: 'platform_worker_memory_waiting_jobs',
  /** Deliveries that had to wait for room in a worker's memory budget before they ran, by type and budget. */
  jobsMemoryWaits: 'platform_jobs_memory_waits_total',
  /** Security events (failed login, lockout, refresh-token reuse, password reset, role change, account disabled), by kind. */
  securityEvents: 'platform_security_events_total',
} as const;

/**
 * The `cause` label of platform_job_lock_lapses_total. `redis`: the worker's loop ran and
 * sent its renewals, and Redis did not take them in time (away, paused, out of reach).
 * `worker`: the worker's loop stood still for more than half the lock (a job blocking it, or a starved process).
 */
export const LOCK_LAPSE_CAUSES = ['redis', 'worker'] as const;

/** The `kind` label of platform_security_events_total. */
export const SECURITY_EVENT_KINDS = [
  'login_failed',
  'account_locked',
  'refresh_token_reuse',
  'password_reset_requested',
  'password_reset',
  'role_change',
  'admin_created',
  'account_disabled',
  'account_enabled',
  /** An operator replaced the password with one nobody knows (enable --reset-password). */
  'password_cleared',
  /** The right password for a disabled account: answered as a wrong one (login_failed too), told apart here. */
  'login_disabled_account',
] as const;
export type SecurityEventKind = (typeof SECURITY_EVENT_KINDS)[number];

export type MetricName = (typeof METRICS)[keyof typeof METRICS];

/**
 * The `budget` label of the worker memory metrics: `input`, large job inputs
 * (WORKER_INPUT_BUDGET_BYTES); `file`, what file jobs hold that grows with their file
 * (WORKER_FILE_MEMORY_BUDGET_BYTES).
 */
export const MEMORY_BUDGETS = ['input', 'file'] as const;
export type MemoryBudgetName = (typeof MEMORY_BUDGETS)[number];

/** Queue depth label values: every place a job can wait or sit in BullMQ. */
export const QUEUE_DEPTH_STATES = ['waiting', 'prioritized', 'delayed', 'active', 'failed'] as const;
export type QueueDepthState = (typeof QUEUE_DEPTH_STATES)[number];

/**
 * Histogram bucket bounds (seconds). Declared here because SLO thresholds must be one of
 * them: a latency objective between two buckets could not be computed from the histogram.
 */
export const HISTOGRAM_BUCKETS = {
  httpRequestDuration: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  jobDuration: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
  jobTimeToStart: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
} as const satisfies Record<string, readonly number[]>;

/**
 * Route templates (the `route` label of the HTTP histogram) by what they serve. Probes and
 * scrapes are not user traffic; event streams stay open for minutes by design; file
 * transfers take as long as the bytes do. SLOs leave out what would distort them.
 */
export const ROUTE_CLASSES = {
  operational: IN_CLUSTER_PATHS,
  streaming: [`${API_PREFIX}/jobs/:id/events`, `${API_PREFIX}/jobs/events`],
  transfer: [`${API_PREFIX}/files`, `${API_PREFIX}/files/:id/content`],
} as const;

/**
 * How Prometheus finds the api and the worker. The workloads carry `podLabels`; the api
 * Service carries them too and names its port `portName`; the worker's pods name their
 * metrics container port `portName`. `job` is the scrape job label every rule selects on.
 */
export const SCRAPE_TARGETS = {
  api: {
    job: 'api',
    podLabels: { 'app.kubernetes.io/name': 'api', 'app.kubernetes.io/part-of': 'platform-kit' },
    portName: 'http',
    port: PORTS.api,
    path: PATHS.metrics,
  },
  worker: {
    job: 'worker',
    podLabels: { 'app.kubernetes.io/name': 'worker', 'app.kubernetes.io/part-of': 'platform-kit' },
    portName: 'metrics',
    port: PORTS.workerMetrics,
    path: PATHS.metrics,
  },
} as const;
export type ScrapeTarget = keyof typeof SCRAPE_TARGETS;

/** The pod label whose value is the scrape job (`api`, `worker`). */
export const JOB_LABEL = 'app.kubernetes.io/name';

/**
 * Where the monitoring stack lives in a cluster, for the Pulumi program that puts it there,
 * the policy pack that holds it to account and `platform doctor --stack` that checks it.
 */
export const MONITORING = {
  /** Prometheus, Alertmanager, Grafana, Loki and the operator: Pod Security `restricted`. */
  namespace: 'monitoring',
  /** Node exporter and the log shipper, which need the host: the one `privileged` namespace. */
  nodeAgentsNamespace: 'monitoring-node-agents',
  /** The Prometheus Service (kube-prometheus-stack, fullnameOverride `monitoring`). */
  prometheusService: 'monitoring-prometheus',
  prometheusPort: 9090,
  /** ConfigMap in `namespace` where the program records what it deployed (stack, namespaces, queue). */
  stackConfigMap: 'platform-kit-observability',
  /** Label on every PrometheusRule the program ships. */
  rulesLabel: 'platform-kit.io/rules',
} as const;
