import { BURN_RATE_WINDOWS, LATENCY_BUCKETS, SLO_PERIOD, type AlertSeverity, type Slo } from '../../services/contract';
import { durationSeconds, literal, oneLine, selector, sumRate } from './promql';
import type { AlertingRule, RecordingRule, RuleGroup } from './rule-types';

/** Recorded series: the error ratio and the event rate of every SLO over each window. */
export const ERROR_RATIO_RECORD = (window: string) => `slo:error_ratio:rate${window}`;
export const EVENT_RATE_RECORD = (window: string) => `slo:events:rate${window}`;

/** Every window some alert reads, short ones first. */
export function sloWindows(): string[] {
  const windows = new Set<string>();
  for (const w of BURN_RATE_WINDOWS) {
    windows.add(w.short);
    windows.add(w.long);
  }
  return [...windows].sort((a, b) => durationSeconds(a) - durationSeconds(b));
}

/** Problems with an SLO declaration, empty when it can be turned into rules. Pure. */
export function sloProblems(slo: Slo): string[] {
  const problems: string[] = [];
  if (!(slo.objective > 0 && slo.objective < 1)) problems.push(`${slo.name}: objective ${slo.objective} must lie strictly between 0 and 1`);
  if (!/^[a-z][a-z0-9-]*$/.test(slo.name)) problems.push(`${slo.name}: name must be lowercase words joined by dashes`);
  if (!/^[A-Z][A-Za-z0-9]*$/.test(slo.alertStem)) problems.push(`${slo.name}: alertStem ${slo.alertStem} must be CamelCase`);
  if (slo.sli.kind === 'latency') {
    const buckets = LATENCY_BUCKETS[slo.sli.histogram];
    if (!buckets?.includes(slo.sli.thresholdSeconds)) {
      problems.push(`${slo.name}: threshold ${slo.sli.thresholdSeconds} s is not a bucket of ${slo.sli.histogram} (${(buckets ?? []).join(', ')})`);
    }
  }
  return problems;
}

/** The fraction of bad events over a window, as PromQL; label-less, NaN without traffic. */
export function errorRatioExpr(slo: Slo, window: string): string {
  const sli = slo.sli;
  switch (sli.kind) {
    case 'errors':
      // A series of bad events exists only after the first one: `or vector(0)` reads its absence as none.
      return `(${sumRate(sli.metric, [...sli.matchers, ...sli.badMatchers], window)} or vector(0)) / ${sumRate(sli.metric, sli.matchers, window)}`;
    case 'latency': {
      const le = { label: 'le', op: '=' as const, value: String(sli.thresholdSeconds) };
      return `1 - ${sumRate(`${sli.histogram}_bucket`, [...sli.matchers, le], window)} / ${sumRate(`${sli.histogram}_count`, sli.matchers, window)}`;
    }
    case 'outcomes': {
      const bad = `(${sumRate(sli.bad, sli.matchers, window)} or vector(0))`;
      return `${bad} / (${sumRate(sli.good, sli.matchers, window)} + ${bad})`;
    }
  }
}

/** Events per second over a window (the denominator of the ratio). */
export function eventRateExpr(slo: Slo, window: string): string {
  const sli = slo.sli;
  switch (sli.kind) {
    case 'errors':
      return sumRate(sli.metric, sli.matchers, window);
    case 'latency':
      return sumRate(`${sli.histogram}_count`, sli.matchers, window);
    case 'outcomes':
      return `${sumRate(sli.good, sli.matchers, window)} + (${sumRate(sli.bad, sli.matchers, window)} or vector(0))`;
  }
}

export function sloRecordingRules(slo: Slo): RecordingRule[] {
  return sloWindows().flatMap((window) => [
    { record: ERROR_RATIO_RECORD(window), expr: errorRatioExpr(slo, window), labels: { slo: slo.name } },
    { record: EVENT_RATE_RECORD(window), expr: eventRateExpr(slo, window), labels: { slo: slo.name } },
  ]);
}

export const BURN_ALERT_SUFFIX: Record<AlertSeverity, string> = { page: 'FastBurn', ticket: 'SlowBurn' };
const BURN_ALERT_FOR: Record<AlertSeverity, string> = { page: '2m', ticket: '15m' };

export function burnAlertName(slo: Slo, severity: AlertSeverity): string {
  return `${slo.alertStem}${BURN_ALERT_SUFFIX[severity]}`;
}

/**
 * One alert per SLO and severity: the window pairs of that severity ORed, each pair's long
 * and short windows ANDed, each long window guarded by a minimum number of events.
 */
export function sloBurnAlerts(slo: Slo, runbookUrl: (alert: string) => string): AlertingRule[] {
  const budget = literal(1 - slo.objective);
  const sel = (record: string) => selector(record, [{ label: 'slo', op: '=', value: slo.name }]);
  const severities = [...new Set(BURN_RATE_WINDOWS.map((w) => w.severity))];
  return severities.map((severity) => {
    const pairs = BURN_RATE_WINDOWS.filter((w) => w.severity === severity);
    const expr = pairs
      .map(
        (w) => `(
          ${sel(ERROR_RATIO_RECORD(w.long))} > (${literal(w.burnRate)} * ${budget})
          and ${sel(ERROR_RATIO_RECORD(w.short))} > (${literal(w.burnRate)} * ${budget})
          and ${sel(EVENT_RATE_RECORD(w.long))} * ${durationSeconds(w.long)} >= ${slo.minEvents}
        )`,
      )
      .join(' or ');
    const windows = pairs.map((w) => `${literal(w.burnRate)}× over ${w.long} and ${w.short}`).join(', or ');
    const alert = burnAlertName(slo, severity);
    const spend = severity === 'page' ? 'fast enough to exhaust it within days' : 'faster than it refills';
    return {
      alert,
      expr: oneLine(expr),
      for: BURN_ALERT_FOR[severity],
      labels: { severity, slo: slo.name },
      annotations: {
        summary: `${slo.title} SLO is burning its error budget ${spend}.`,
        description: `${slo.description} Objective ${literal(slo.objective * 100)} % over ${SLO_PERIOD}; the error ratio is {{ $value | humanizePercentage }} over the long window (alerting at ${windows} the budget of ${literal((1 - slo.objective) * 100)} %).`,
        runbook_url: runbookUrl(alert),
      },
    };
  });
}

export function sloRuleGroups(slos: readonly Slo[], runbookUrl: (alert: string) => string): RuleGroup[] {
  const problems = slos.flatMap(sloProblems);
  if (problems.length > 0) throw new Error(`SLO declarations cannot be turned into rules: ${problems.join('; ')}`);
  // One group per SLO, recording rules first: rules of a group run in order, so each alert
  // reads ratios recorded in the same evaluation, never ones a lookback window may have lost.
  return slos.map((slo) => ({ name: `platform-slo-${slo.name}`, rules: [...sloRecordingRules(slo), ...sloBurnAlerts(slo, runbookUrl)] }));
}
