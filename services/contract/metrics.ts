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
  jobsCancelled: 'platform_jobs_cancelled_total',
  jobDuration: 'platform_job_duration_seconds',
  jobTimeToStart: 'platform_job_time_to_start_seconds',
  queueDepth: 'platform_queue_depth',
  relayLag: 'platform_relay_lag_seconds',
  relayEnqueued: 'platform_relay_enqueued_total',
  deadLetterSize: 'platform_dead_letter_jobs',
  dbPoolConnections: 'platform_db_pool_connections',
  redisUp: 'platform_redis_up',
  workerLastActivity: 'platform_worker_last_activity_timestamp_seconds',
} as const;

export type MetricName = (typeof METRICS)[keyof typeof METRICS];

/** Queue depth label values: every place a job can wait or sit in BullMQ. */
export const QUEUE_DEPTH_STATES = ['waiting', 'prioritized', 'delayed', 'active', 'failed'] as const;
export type QueueDepthState = (typeof QUEUE_DEPTH_STATES)[number];
