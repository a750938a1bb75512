/** Prometheus rule groups in the shape of a rule file and of a PrometheusRule's `spec.groups`. */
export interface RecordingRule {
  record: string;
  expr: string;
  labels?: Record<string, string>;
}

export interface AlertingRule {
  alert: string;
  expr: string;
  /** How long the expression must hold before the alert fires. */
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export type Rule = RecordingRule | AlertingRule;

export interface RuleGroup {
  name: string;
  /** Evaluation interval; Prometheus' global one when unset. */
  interval?: string;
  rules: Rule[];
}

export function isAlertingRule(rule: Rule): rule is AlertingRule {
  return 'alert' in rule;
}

/** What an alert says beyond its expression, written for someone paged at night. */
export interface AlertText {
  summary: string;
  /** May use Go templates (`{{ $value | humanizePercentage }}`). */
  description: string;
}
