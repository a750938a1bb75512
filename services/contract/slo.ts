import { HISTOGRAM_BUCKETS, METRICS, ROUTE_CLASSES, SCRAPE_TARGETS } from './metrics';

/**
 * Service level objectives, declared once. The rule generator turns each into recording
 * rules and multi-window, multi-burn-rate alerts; the dashboards plot their budgets; the
 * runbooks explain them. Pure data: no PromQL is written here, only which events count.
 */

/** A label matcher on a metric's series, as Prometheus writes it (`route!~"/healthz"`). */
export interface LabelMatcher {
  label: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}

/**
 * What makes an event bad:
 * - `errors`: a counter's series split by a label (bad = `badMatchers` on top of `matchers`).
 * - `latency`: a histogram's observations slower than `thresholdSeconds` (one of its buckets).
 * - `outcomes`: two counters of final outcomes; bad over good + bad.
 */
export type Sli =
  | { kind: 'errors'; metric: string; matchers: LabelMatcher[]; badMatchers: LabelMatcher[] }
  | { kind: 'latency'; histogram: string; matchers: LabelMatcher[]; thresholdSeconds: number }
  | { kind: 'outcomes'; good: string; bad: string; matchers: LabelMatcher[] };

export interface Slo {
  /** Stable id, the `slo` label of every recorded series: never rename one that shipped. */
  name: string;
  /** CamelCase stem of the alert names (`ApiAvailability` → `ApiAvailabilityFastBurn`). */
  alertStem: string;
  title: string;
  /** What a user experiences when the objective is missed. */
  description: string;
  /** Fraction of good events over `SLO_PERIOD`, e.g. 0.999. */
  objective: number;
  sli: Sli;
  /**
   * Fewest events in an alert's long window before it may fire: with less traffic one bad
   * event is a large ratio and would page for nothing.
   */
  minEvents: number;
}

/** The period every objective is measured over. */
export const SLO_PERIOD = '30d';

/**
 * Burn-rate alert windows (Google SRE Workbook, chapter 5): the long and short windows of a
 * pair are ANDed, pairs of one severity are ORed. A burn rate of 1 spends the budget in
 * exactly `SLO_PERIOD`; 14.4 spends 2 % of it in an hour.
 */
export const BURN_RATE_WINDOWS = [
  { severity: 'page', burnRate: 14.4, long: '1h', short: '5m' },
  { severity: 'page', burnRate: 6, long: '6h', short: '30m' },
  { severity: 'ticket', burnRate: 1, long: '3d', short: '6h' },
] as const;
export type AlertSeverity = (typeof BURN_RATE_WINDOWS)[number]['severity'];

const notIn = (label: string, values: readonly string[]): LabelMatcher => ({ label, op: '!~', value: values.map(escapeRegex).join('|') });

/** Escapes a literal for a PromQL regex matcher (`/v1/files/:id` has no specials, `.` does). */
export function escapeRegex(literal: string): string {
  return literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const apiJob: LabelMatcher = { label: 'job', op: '=', value: SCRAPE_TARGETS.api.job };
const workerJob: LabelMatcher = { label: 'job', op: '=', value: SCRAPE_TARGETS.worker.job };
const eitherJob: LabelMatcher = { label: 'job', op: '=~', value: `${SCRAPE_TARGETS.api.job}|${SCRAPE_TARGETS.worker.job}` };

export const SLOS = [
  {
    name: 'api-availability',
    alertStem: 'ApiAvailability',
    title: 'API availability',
    description: 'Requests to the API answered without a server error (5xx). Probes and scrapes do not count.',
    objective: 0.999,
    sli: {
      kind: 'errors',
      metric: `${METRICS.httpRequestDuration}_count`,
      matchers: [apiJob, notIn('route', ROUTE_CLASSES.operational)],
      badMatchers: [{ label: 'status', op: '=~', value: '5..' }],
    },
    minEvents: 100,
  },
  {
    name: 'api-latency',
    alertStem: 'ApiLatency',
    title: 'API latency',
    description: 'Requests to the API answered within 500 ms. Event streams and file transfers last as long as their content and do not count.',
    objective: 0.99,
    sli: {
      kind: 'latency',
      histogram: METRICS.httpRequestDuration,
      matchers: [apiJob, notIn('route', [...ROUTE_CLASSES.operational, ...ROUTE_CLASSES.streaming, ...ROUTE_CLASSES.transfer])],
      thresholdSeconds: 0.5,
    },
    minEvents: 100,
  },
  {
    name: 'job-success',
    alertStem: 'JobSuccess',
    title: 'Job success',
    description: 'Jobs that end succeeded rather than dead-lettered (failed after their last attempt). Cancelled jobs do not count.',
    objective: 0.99,
    // The relay's sweep, in whichever api or worker process holds its lock, dead-letters crash loops and lost attempts too.
    sli: { kind: 'outcomes', good: METRICS.jobsSucceeded, bad: METRICS.jobsFailed, matchers: [eitherJob] },
    minEvents: 50,
  },
  {
    name: 'job-time-to-start',
    alertStem: 'JobTimeToStart',
    title: 'Job time to start',
    description: 'Accepted jobs whose first attempt starts within 60 s.',
    objective: 0.99,
    sli: { kind: 'latency', histogram: METRICS.jobTimeToStart, matchers: [workerJob], thresholdSeconds: 60 },
    minEvents: 50,
  },
] as const satisfies readonly Slo[];

export type SloName = (typeof SLOS)[number]['name'];

/** The histogram buckets a latency SLI may use as its threshold. */
export const LATENCY_BUCKETS: Record<string, readonly number[]> = {
  [METRICS.httpRequestDuration]: HISTOGRAM_BUCKETS.httpRequestDuration,
  [METRICS.jobTimeToStart]: HISTOGRAM_BUCKETS.jobTimeToStart,
  [METRICS.jobDuration]: HISTOGRAM_BUCKETS.jobDuration,
};
