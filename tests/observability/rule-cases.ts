/**
 * For every alert the platform ships: a synthetic bad history that must fire it (with the
 * labels and description it fires with) and a healthy one that must leave it silent. The
 * promtool test turns these into a `promtool test rules` file; a test fails when an alert
 * has no case of either kind.
 */

export interface Series {
  series: string;
  /** promtool's expanding notation: `0+10x180` is 0, 10, 20, … 181 samples. */
  values: string;
}

export interface Scenario {
  /** Sample spacing of the series. */
  interval: string;
  series: Series[];
  /** When the alert is checked, as an offset from the first sample. */
  at: string;
}

export interface FiringScenario extends Scenario {
  /** Labels the alert fires with besides severity (and slo, for SLO alerts). */
  labels?: Record<string, string>;
  /** The description as Alertmanager will receive it, templates rendered. */
  description: string;
}

export interface AlertCase {
  fires: FiringScenario;
  /** Other bad histories that must fire it too: each way the fault can show in the metrics. */
  alsoFires?: FiringScenario[];
  silent: Scenario[];
}

// ------------------------------------------------------------------ SLO burn rates
// A window pair burns when both its windows exceed burnRate × budget; a fast burn is
// 14.4× (1h/5m) or 6× (6h/30m), a slow burn 1× (3d/6h). The bad histories below hold one
// steady error ratio: well above 14.4× for the fast burns, between 1× and 6× for the slow.

const apiReq = (route: string, status: string) => `http_request_duration_seconds_count{job="api",method="GET",route="${route}",status="${status}"}`;
const apiBucket = (route: string, le: string) => `http_request_duration_seconds_bucket{job="api",method="GET",route="${route}",status="200",le="${le}"}`;
const jobs = (metric: string, job = 'worker') => `${metric}{job="${job}",type="file.checksum"}`;
const ttsBucket = (le: string) => `platform_job_time_to_start_seconds_bucket{job="worker",type="file.checksum",le="${le}"}`;
const ttsCount = 'platform_job_time_to_start_seconds_count{job="worker",type="file.checksum"}';

/** 75 minutes at one sample a minute: the 1h window filled, and the 2m `for` passed. */
const fast = (series: Series[]): Scenario => ({ interval: '1m', series, at: '75m' });
/** A little over three days at one sample every half hour: the 3d window filled, and the 15m `for` passed. */
const slow = (series: Series[]): Scenario => ({ interval: '30m', series, at: '73h' });
const seventyFiveMinutes = 'x80';
const threeDays = 'x150';

function availability(perStep: { ok: number; errors: number }, steps: string): Series[] {
  return [
    { series: apiReq('/v1/jobs/:id', '200'), values: `0+${perStep.ok}${steps}` },
    { series: apiReq('/v1/jobs/:id', '503'), values: `0+${perStep.errors}${steps}` },
    // Probes fail too, at a rate that would page if they counted: they must not.
    { series: apiReq('/readyz', '503'), values: `0+500${steps}` },
  ];
}

function latency(perStep: { fast: number; total: number }, steps: string): Series[] {
  return [
    { series: apiBucket('/v1/jobs', '0.5'), values: `0+${perStep.fast}${steps}` },
    { series: apiBucket('/v1/jobs', '+Inf'), values: `0+${perStep.total}${steps}` },
    { series: apiReq('/v1/jobs', '200'), values: `0+${perStep.total}${steps}` },
    // An event stream lasts minutes by design: all slow, never counted.
    { series: apiBucket('/v1/jobs/:id/events', '0.5'), values: `0+0${steps}` },
    { series: apiReq('/v1/jobs/:id/events', '200'), values: `0+300${steps}` },
  ];
}

function outcomes(perStep: { succeeded: number; failed: number }, steps: string): Series[] {
  return [
    { series: jobs('platform_jobs_succeeded_total'), values: `0+${perStep.succeeded}${steps}` },
    { series: jobs('platform_jobs_failed_total'), values: `0+${perStep.failed}${steps}` },
  ];
}

function timeToStart(perStep: { within: number; total: number }, steps: string): Series[] {
  return [
    { series: ttsBucket('60'), values: `0+${perStep.within}${steps}` },
    { series: ttsBucket('+Inf'), values: `0+${perStep.total}${steps}` },
    { series: ttsCount, values: `0+${perStep.total}${steps}` },
  ];
}

const sloDescription = (text: string, objective: string, ratio: string, windows: string, budget: string) =>
  `${text} Objective ${objective} % over 30d; the error ratio is ${ratio} over the long window (alerting at ${windows} the budget of ${budget} %).`;
const FAST = '14.4× over 1h and 5m, or 6× over 6h and 30m';
const SLOW = '1× over 3d and 6h';
const AVAILABILITY = 'Requests to the API answered without a server error (5xx). Probes and scrapes do not count.';
const LATENCY = 'Requests to the API answered within 500 ms. Event streams and file transfers last as long as their content and do not count.';
const SUCCESS = 'Jobs that end succeeded rather than dead-lettered (failed after their last attempt). Cancelled jobs do not count.';
const TTS = 'Accepted jobs whose first attempt starts within 60 s.';
const REDIS_UNREACHABLE = 'No worker has had an answer from Redis for 2 minutes (its last check failed, or, started meanwhile, it has not had one yet). Nothing is delivered; the API keeps accepting jobs into PostgreSQL and the relay hands them over once Redis is back.';

export const RULE_CASES: Record<string, AlertCase> = {
  ApiAvailabilityFastBurn: {
    fires: { ...fast(availability({ ok: 90, errors: 10 }, seventyFiveMinutes)), description: sloDescription(AVAILABILITY, '99.9', '10%', FAST, '0.1') },
    silent: [
      fast(availability({ ok: 9999, errors: 1 }, seventyFiveMinutes)),
      // 20 % errors but only 15 requests an hour: below the 100-event guard of either window.
      fast(availability({ ok: 0.2, errors: 0.05 }, seventyFiveMinutes)),
    ],
  },
  ApiAvailabilitySlowBurn: {
    fires: { ...slow(availability({ ok: 997, errors: 3 }, threeDays)), description: sloDescription(AVAILABILITY, '99.9', '0.3%', SLOW, '0.1') },
    silent: [slow(availability({ ok: 9999, errors: 1 }, threeDays))],
  },
  ApiLatencyFastBurn: {
    fires: { ...fast(latency({ fast: 70, total: 100 }, seventyFiveMinutes)), description: sloDescription(LATENCY, '99', '30%', FAST, '1') },
    silent: [fast(latency({ fast: 999, total: 1000 }, seventyFiveMinutes))],
  },
  ApiLatencySlowBurn: {
    fires: { ...slow(latency({ fast: 97, total: 100 }, threeDays)), description: sloDescription(LATENCY, '99', '3%', SLOW, '1') },
    silent: [slow(latency({ fast: 999, total: 1000 }, threeDays))],
  },
  JobSuccessFastBurn: {
    fires: { ...fast(outcomes({ succeeded: 80, failed: 20 }, seventyFiveMinutes)), description: sloDescription(SUCCESS, '99', '20%', FAST, '1') },
    alsoFires: [
      // Jobs that kill their worker are dead-lettered by the relay's sweep, which runs in the api as often as in a worker.
      {
        ...fast([
          { series: jobs('platform_jobs_succeeded_total'), values: `0+80${seventyFiveMinutes}` },
          { series: jobs('platform_jobs_failed_total', 'api'), values: `0+20${seventyFiveMinutes}` },
        ]),
        description: sloDescription(SUCCESS, '99', '20%', FAST, '1'),
      },
    ],
    silent: [fast(outcomes({ succeeded: 999, failed: 1 }, seventyFiveMinutes)), fast([{ series: jobs('platform_jobs_succeeded_total'), values: `0+100${seventyFiveMinutes}` }])],
  },
  JobSuccessSlowBurn: {
    fires: { ...slow(outcomes({ succeeded: 97, failed: 3 }, threeDays)), description: sloDescription(SUCCESS, '99', '3%', SLOW, '1') },
    silent: [slow(outcomes({ succeeded: 999, failed: 1 }, threeDays))],
  },
  JobTimeToStartFastBurn: {
    fires: { ...fast(timeToStart({ within: 50, total: 100 }, seventyFiveMinutes)), description: sloDescription(TTS, '99', '50%', FAST, '1') },
    silent: [fast(timeToStart({ within: 999, total: 1000 }, seventyFiveMinutes))],
  },
  JobTimeToStartSlowBurn: {
    fires: { ...slow(timeToStart({ within: 97, total: 100 }, threeDays)), description: sloDescription(TTS, '99', '3%', SLOW, '1') },
    silent: [slow(timeToStart({ within: 999, total: 1000 }, threeDays))],
  },

  // ---------------------------------------------------------------- symptoms
  ApiAbsent: {
    fires: {
      interval: '1m',
      series: [{ series: 'up{job="api",instance="10.0.1.5:8080"}', values: '1 1 0x20' }],
      at: '15m',
      description: 'Prometheus reaches no api pod (job="api"): the API is down, crash-looping, or its Service and ServiceMonitor no longer match. The API SLOs cannot see an outage of this kind, since no requests are recorded at all.',
    },
    silent: [{ interval: '1m', series: [{ series: 'up{job="api",instance="10.0.1.5:8080"}', values: '1x20' }, { series: 'up{job="api",instance="10.0.2.7:8080"}', values: '0x20' }], at: '15m' }],
  },
  WorkerAbsent: {
    fires: {
      interval: '1m',
      series: [{ series: 'up{job="worker",instance="10.0.1.9:9091"}', values: '0x20' }],
      at: '15m',
      description: 'Prometheus reaches no worker pod (job="worker"): accepted jobs are not running. Jobs stay safe in PostgreSQL and run once a worker is back.',
    },
    silent: [{ interval: '1m', series: [{ series: 'up{job="worker",instance="10.0.1.9:9091"}', values: '1x20' }], at: '15m' }],
  },
  ApiErrorBurst: {
    fires: {
      interval: '1m',
      series: [
        { series: apiReq('/v1/jobs', '200'), values: '0+540x20' },
        { series: apiReq('/v1/jobs', '500'), values: '0+60x20' },
      ],
      at: '15m',
      description: '10% of API requests over the last 5 minutes ended in a 5xx. A burst this large pages before the availability SLO\'s hourly window would.',
    },
    silent: [
      { interval: '1m', series: [{ series: apiReq('/v1/jobs', '200'), values: '0+600x20' }, { series: apiReq('/healthz', '503'), values: '0+600x20' }], at: '15m' },
      // Half the requests fail, but there is less than one request a second: too little to page on.
      { interval: '1m', series: [{ series: apiReq('/v1/jobs', '200'), values: '0+5x20' }, { series: apiReq('/v1/jobs', '500'), values: '0+5x20' }], at: '15m' },
    ],
  },
  JobBacklogAging: {
    fires: {
      interval: '1m',
      series: [{ series: 'platform_queue_oldest_job_age_seconds{job="worker",instance="a"}', values: '0+60x20' }],
      at: '20m',
      description: 'A job accepted 20m 0s ago is still queued. Workers are absent, saturated, or not taking work (queue paused, Redis unreachable).',
    },
    silent: [{ interval: '1m', series: [{ series: 'platform_queue_oldest_job_age_seconds{job="worker",instance="a"}', values: '5x20' }], at: '20m' }],
  },
  DeadLetterGrowing: {
    fires: {
      interval: '1m',
      series: [{ series: 'platform_dead_letter_jobs{job="worker",instance="a"}', values: '0+1x90' }],
      at: '90m',
      description: 'The dead-letter set grew by 60 jobs in an hour: jobs are failing their last attempt. Find the failing type and cause before replaying them.',
    },
    alsoFires: [
      // The only worker restarted at 80m (a missed scrape, the series stale for a moment): the set grew on, and 10 minutes of growth
      // had passed by then; the alert goes on firing rather than waiting 10 minutes more.
      {
        interval: '1m',
        series: [{ series: 'platform_dead_letter_jobs{job="worker",instance="a"}', values: '0+1x80 stale 82+1x10' }],
        at: '85m',
        description: 'The dead-letter set grew by 60 jobs in an hour: jobs are failing their last attempt. Find the failing type and cause before replaying them.',
      },
    ],
    silent: [
      { interval: '1m', series: [{ series: 'platform_dead_letter_jobs{job="worker",instance="a"}', values: '250x90' }], at: '90m' },
      // A replay empties the set: shrinking is not growth.
      { interval: '1m', series: [{ series: 'platform_dead_letter_jobs{job="worker",instance="a"}', values: '90-1x90' }], at: '90m' },
    ],
  },
  RelayLagHigh: {
    fires: {
      interval: '1m',
      series: [{ series: 'platform_relay_lag_seconds{job="api",instance="a"}', values: '0+30x20' }],
      at: '20m',
      description: 'The oldest accepted job that Redis does not hold has waited 10m 0s. The relay cannot hand jobs to the queue: Redis is down, full, or was restarted and the sweep is failing.',
    },
    silent: [
      { interval: '1m', series: [{ series: 'platform_relay_lag_seconds{job="worker",instance="a"}', values: '3x20' }], at: '20m' },
      // A process exports only a lag it measured lately: one that measured a large lag, then
      // lost the sweep lock to a process that handed the jobs over, drops its series (stale)
      // instead of repeating its last value and paging on a backlog that is gone.
      {
        interval: '1m',
        series: [
          { series: 'platform_relay_lag_seconds{job="api",instance="a"}', values: '300x5 stale' },
          { series: 'platform_relay_lag_seconds{job="worker",instance="b"}', values: '_x5 0x15' },
        ],
        at: '20m',
      },
    ],
  },
  PostgresConnectionsNearLimit: {
    fires: {
      interval: '1m',
      series: [
        { series: 'platform_postgres_connections{job="worker",instance="a"}', values: '90x30' },
        { series: 'platform_postgres_max_connections{job="worker",instance="a"}', values: '100x30' },
      ],
      at: '30m',
      description: '90% of the server\'s connections are in use. When none is left, new API and worker connections fail and requests error.',
    },
    silent: [
      {
        interval: '1m',
        series: [
          { series: 'platform_postgres_connections{job="worker",instance="a"}', values: '40x30' },
          { series: 'platform_postgres_max_connections{job="worker",instance="a"}', values: '100x30' },
        ],
        at: '30m',
      },
    ],
  },
  RedisMemoryNearLimit: {
    fires: {
      interval: '1m',
      series: [
        { series: 'platform_redis_memory_used_bytes{job="worker",instance="a"}', values: '950000000x30' },
        { series: 'platform_redis_memory_max_bytes{job="worker",instance="a"}', values: '1000000000x30' },
      ],
      at: '30m',
      description: 'Redis uses 95% of maxmemory. Its policy is noeviction, so when it is full every enqueue and lock renewal is refused.',
    },
    silent: [
      {
        interval: '1m',
        series: [
          { series: 'platform_redis_memory_used_bytes{job="worker",instance="a"}', values: '100000000x30' },
          { series: 'platform_redis_memory_max_bytes{job="worker",instance="a"}', values: '1000000000x30' },
        ],
        at: '30m',
      },
      // maxmemory 0 is unlimited (a local redis-server): no ratio to alert on.
      {
        interval: '1m',
        series: [
          { series: 'platform_redis_memory_used_bytes{job="worker",instance="a"}', values: '950000000x30' },
          { series: 'platform_redis_memory_max_bytes{job="worker",instance="a"}', values: '0x30' },
        ],
        at: '30m',
      },
    ],
  },
  RedisRejectingWrites: {
    fires: {
      interval: '1m',
      // Two workers read the same server's count: 5 refused commands, not 10.
      series: [
        { series: 'platform_redis_rejected_writes_total{job="worker",instance="a"}', values: '0x10 1+1x10' },
        { series: 'platform_redis_rejected_writes_total{job="worker",instance="b"}', values: '4x10 5+1x10' },
      ],
      at: '20m',
      description: 'Redis answered 5 commands with OOM in the last 5 minutes. Jobs cannot be enqueued and running jobs cannot renew their locks.',
    },
    silent: [{ interval: '1m', series: [{ series: 'platform_redis_rejected_writes_total{job="worker",instance="a"}', values: '7x20' }], at: '20m' }],
  },
  RedisUnreachable: {
    fires: {
      interval: '1m',
      series: [
        { series: 'platform_redis_up{job="worker",instance="a"}', values: '1 1 0x10' },
        { series: 'platform_redis_up{job="worker",instance="b"}', values: '0x12' },
      ],
      at: '10m',
      description: REDIS_UNREACHABLE,
    },
    alsoFires: [
      // A worker restarted during the outage serves /metrics while it waits for Redis, with no check to report.
      {
        interval: '1m',
        series: [
          { series: 'up{job="worker",instance="a"}', values: '1x12' },
          { series: 'platform_redis_up{job="worker",instance="a"}', values: '1 1 stale' },
        ],
        at: '10m',
        description: REDIS_UNREACHABLE,
      },
    ],
    silent: [
      {
        interval: '1m',
        series: [
          { series: 'platform_redis_up{job="worker",instance="a"}', values: '1x12' },
          { series: 'platform_redis_up{job="worker",instance="b"}', values: '0x12' },
        ],
        at: '10m',
      },
      // Workers gone altogether are WorkerAbsent's page, not this one.
      { interval: '1m', series: [{ series: 'up{job="worker",instance="a"}', values: '0x12' }], at: '10m' },
    ],
  },
};
