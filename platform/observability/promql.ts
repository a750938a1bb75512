import type { LabelMatcher } from '../../services/contract';

/** `metric{a="x",b!~"y"}`; the label values are quoted as PromQL strings. */
export function selector(metric: string, matchers: readonly LabelMatcher[] = []): string {
  if (matchers.length === 0) return metric;
  return `${metric}{${matchers.map((m) => `${m.label}${m.op}${JSON.stringify(m.value)}`).join(',')}}`;
}

/** `sum(rate(sel[w]))`. */
export function sumRate(metric: string, matchers: readonly LabelMatcher[], window: string): string {
  return `sum(rate(${selector(metric, matchers)}[${window}]))`;
}

/** Prometheus duration (`5m`, `1h`, `3d`) in seconds. */
export function durationSeconds(duration: string): number {
  const m = /^(\d+)(s|m|h|d|w)$/.exec(duration);
  if (!m) throw new Error(`not a Prometheus duration: ${duration}`);
  const unit = { s: 1, m: 60, h: 3_600, d: 86_400, w: 604_800 }[m[2] as 's' | 'm' | 'h' | 'd' | 'w'];
  return Number(m[1]) * unit;
}

/** A number as PromQL reads it, without float noise (`1 - 0.999` → `0.001`). */
export function literal(n: number): string {
  return String(Number(n.toPrecision(12)));
}

/** Collapses the whitespace of a multi-line expression written for people into one line. */
export function oneLine(expr: string): string {
  return expr.replace(/\s+/g, ' ').replace(/\( /g, '(').replace(/ \)/g, ')').trim();
}
