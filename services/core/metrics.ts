import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { HISTOGRAM_BUCKETS, JOB_TYPES, METRICS } from '../contract';

/** A measurement this process made, exported only while it is fresh. */
export interface FreshGauge {
  /** Exports `value` for the next `freshForMs`; after that the series is dropped unless measured again. */
  record(value: number, freshForMs: number): void;
  /** The value exported now, or undefined when there is none fresh. */
  current(): number | undefined;
}

/**
 * A gauge for a value that whichever process holds a lock measures (the relay lag, under
 * the sweep lock). A process that stopped measuring drops its series (Prometheus marks it
 * stale) rather than repeating its last value, which would keep an alert firing, or
 * silent, on its behalf.
 */
function freshGauge(config: { name: string; help: string; registers: Registry[] }): FreshGauge {
  let latest: { value: number; until: number } | undefined;
  const current = () => (latest && Date.now() <= latest.until ? latest.value : undefined);
  new Gauge({
    ...config,
    collect() {
      const value = current();
      if (value === undefined) this.remove();
      else this.set(value);
    },
  });
  return {
    record(value, freshForMs) {
      latest = { value, until: Date.now() + freshForMs };
    },
    current,
  };
}

/**
 * A gauge for a value read from outside the process (a count in PostgreSQL, a reply of
 * Redis). A label-less prom-client gauge exports 0 from birth, which Prometheus cannot tell
 * from a measured 0: a worker that has not measured yet (just restarted, or waiting for
 * Redis) would report an empty dead-letter set and no backlog, and a process that never
 * measures (the api) would report Redis down forever. The series appears with the first
 * measurement instead.
 */
function measuredGauge(config: { name: string; help: string; registers: Registry[] }): Gauge {
  const gauge = new Gauge(config);
  gauge.remove();
  return gauge;
}

/**
 * Per-type series exist from the start at 0. A counter series born on its first event
 * enters Prometheus at its first scrape already holding that event (and whatever else came
 * in the same scrape interval), which rate() and increase() never count: a burst of
 * failures of a type that had not failed since the process started would not move the
 * job-success SLO at all. The type label is bounded by the contract's registry.
 */
function startAtZero(metrics: { counters: Counter<'type'>[]; histograms: Histogram<'type'>[] }): void {
  for (const type of Object.keys(JOB_TYPES)) {
    for (const counter of metrics.counters) counter.inc({ type }, 0);
    for (const histogram of metrics.histograms) histogram.zero({ type });
  }
}

/**
 * Every metric the platform emits, registered once per process on its own registry.
 * Names come from the contract so dashboards and alert rules cannot drift from them.
 */
export function createMetrics(service: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });

  const registers = [registry];
  const metrics = {
    registry,
    httpRequestDuration: new Histogram({
      name: METRICS.httpRequestDuration,
      help: 'HTTP request duration by method, route template and status code.',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [...HISTOGRAM_BUCKETS.httpRequestDuration],
      registers,
    }),
    jobsSubmitted: new Counter({ name: METRICS.jobsSubmitted, help: 'Jobs accepted by the API.', labelNames: ['type'] as const, registers }),
    jobsStarted: new Counter({ name: METRICS.jobsStarted, help: 'Job attempts started by workers.', labelNames: ['type'] as const, registers }),
    jobsSucceeded: new Counter({ name: METRICS.jobsSucceeded, help: 'Jobs that succeeded.', labelNames: ['type'] as const, registers }),
    jobsFailed: new Counter({ name: METRICS.jobsFailed, help: 'Jobs that failed for good (dead-lettered).', labelNames: ['type'] as const, registers }),
    jobsRetried: new Counter({ name: METRICS.jobsRetried, help: 'Failed attempts that will be retried.', labelNames: ['type'] as const, registers }),
    jobsDeferred: new Counter({
      name: METRICS.jobsDeferred,
      help: 'Attempts that failed on the platform\'s infrastructure, queued again without being charged.',
      labelNames: ['type', 'dependency'] as const,
      registers,
    }),
    jobsHeld: new Counter({
      name: METRICS.jobsHeld,
      help: 'Deliveries held back because their user already ran JOBS_RUNNING_PER_USER jobs; they run when one of those ends.',
      labelNames: ['type'] as const,
      registers,
    }),
    jobLockLapses: new Counter({
      name: METRICS.jobLockLapses,
      help: 'Runs stopped because their queue lock ran out, by cause: redis (renewals not taken in time; not charged as a crash) or worker (its loop stood still; charged).',
      labelNames: ['cause'] as const,
      registers,
    }),
    jobsCancelled: new Counter({ name: METRICS.jobsCancelled, help: 'Jobs cancelled.', labelNames: ['type'] as const, registers }),
    jobDuration: new Histogram({
      name: METRICS.jobDuration,
      help: 'Duration of one job attempt by type and outcome.',
      labelNames: ['type', 'outcome'] as const,
      buckets: [...HISTOGRAM_BUCKETS.jobDuration],
      registers,
    }),
    jobTimeToStart: new Histogram({
      name: METRICS.jobTimeToStart,
      help: 'Time from acceptance to the first attempt starting.',
      labelNames: ['type'] as const,
      buckets: [...HISTOGRAM_BUCKETS.jobTimeToStart],
      registers,
    }),
    queueDepth: new Gauge({ name: METRICS.queueDepth, help: 'Queue entries by BullMQ state: each carries one job, or up to its type\'s jobsPerQueueEntry.', labelNames: ['queue', 'state'] as const, registers }),
    relayLag: freshGauge({
      name: METRICS.relayLag,
      help: 'Age of the oldest queued job (past the hand-off grace) that Redis could not be shown to hold, as this process last measured it; absent when this process has not measured it lately.',
      registers,
    }),
    relayEnqueued: new Counter({ name: METRICS.relayEnqueued, help: 'Jobs handed to BullMQ by the relay, by path.', labelNames: ['path'] as const, registers }),
    deadLetterSize: measuredGauge({ name: METRICS.deadLetterSize, help: 'Jobs in the dead-letter set.', registers }),
    dbPoolConnections: new Gauge({ name: METRICS.dbPoolConnections, help: 'PostgreSQL pool connections by pool (general, batch) and state.', labelNames: ['pool', 'state'] as const, registers }),
    queueOldestJobAge: measuredGauge({ name: METRICS.queueOldestJobAge, help: 'Seconds the oldest queued job has waited (0 when none is queued).', registers }),
    postgresConnections: measuredGauge({ name: METRICS.postgresConnections, help: 'Backends connected to the PostgreSQL server, from every client.', registers }),
    postgresMaxConnections: measuredGauge({ name: METRICS.postgresMaxConnections, help: 'PostgreSQL max_connections.', registers }),
    postgresAvailable: new Gauge({
      name: METRICS.postgresAvailable,
      help: '1 while this API process sends requests to PostgreSQL; 0 while it answers them 503 at once, PostgreSQL having been found away and not yet answered a probe. Over API_PROCESSES: 0 when any of them refuses.',
      // A sum over a pod's processes would read 2 for two that are well and 1 for one refusing.
      aggregator: 'min',
      registers,
    }),
    redisUp: measuredGauge({ name: METRICS.redisUp, help: '1 when the last Redis check succeeded.', registers }),
    redisMemoryUsed: measuredGauge({ name: METRICS.redisMemoryUsed, help: 'Redis used_memory in bytes.', registers }),
    redisMemoryMax: measuredGauge({ name: METRICS.redisMemoryMax, help: 'Redis maxmemory in bytes (0: unlimited).', registers }),
    redisRejectedWrites: new Counter({ name: METRICS.redisRejectedWrites, help: 'Commands Redis refused for lack of memory (OOM), as this process saw them grow in INFO errorstats.', registers }),
    workerConcurrency: new Gauge({ name: METRICS.workerConcurrency, help: 'Jobs this worker runs at once (WORKER_CONCURRENCY).', registers }),
    workerMemoryBudget: new Gauge({
      name: METRICS.workerMemoryBudget,
      help: 'Bytes this worker lets its jobs hold at once, by budget: input (WORKER_INPUT_BUDGET_BYTES), file (WORKER_FILE_MEMORY_BUDGET_BYTES).',
      labelNames: ['budget'] as const,
      registers,
    }),
    workerMemoryHeld: new Gauge({ name: METRICS.workerMemoryHeld, help: 'Bytes of a memory budget this worker\'s jobs hold now, by budget.', labelNames: ['budget'] as const, registers }),
    workerMemoryWaiting: new Gauge({
      name: METRICS.workerMemoryWaiting,
      help: 'Deliveries waiting now for room in a memory budget of this worker before they run, by budget.',
      labelNames: ['budget'] as const,
      registers,
    }),
    jobsMemoryWaits: new Counter({
      name: METRICS.jobsMemoryWaits,
      help: 'Deliveries that waited for room in a memory budget of their worker before they ran, by type and budget.',
      labelNames: ['type', 'budget'] as const,
      registers,
    }),
    securityEvents: new Counter({ name: METRICS.securityEvents, help: 'Security events (failed logins, lockouts, token reuse, resets, role changes), by kind.', labelNames: ['kind'] as const, registers }),
    workerLastActivity: new Gauge({ name: METRICS.workerLastActivity, help: 'Unix time of the worker loop\'s last sign of progress.', registers }),
  };
  startAtZero({
    counters: [metrics.jobsSubmitted, metrics.jobsStarted, metrics.jobsSucceeded, metrics.jobsFailed, metrics.jobsRetried, metrics.jobsCancelled],
    histograms: [metrics.jobTimeToStart],
  });
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;
