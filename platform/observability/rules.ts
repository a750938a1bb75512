import { SLOS, type Slo } from '../../services/contract';
import { isAlertingRule, type AlertingRule, type RuleGroup } from './rule-types';
import { sloRuleGroups } from './slo-rules';
import { symptomAlertRules } from './symptom-alerts';

export interface RuleOptions {
  /** Where runbooks are published; every alert links to `<base>/<AlertName>.md`. */
  runbookBaseUrl: string;
  /** SLOs to turn into rules. Default: the contract's. */
  slos?: readonly Slo[];
}

/** `runbook_url` of an alert, from the one pattern every rule uses. */
export function runbookUrlFor(base: string, alert: string): string {
  return `${base.replace(/\/+$/, '')}/${alert}.md`;
}

/**
 * Every rule group the platform ships: SLO recording rules, SLO burn-rate alerts and the
 * symptom alerts. The same groups become PrometheusRule objects in the cluster, the rule
 * files `npm run rules` writes, and the rules the local Prometheus of `npm start -- --observe` loads.
 */
export function platformRuleGroups(options: RuleOptions): RuleGroup[] {
  const url = (alert: string) => runbookUrlFor(options.runbookBaseUrl, alert);
  return [...sloRuleGroups(options.slos ?? SLOS, url), { name: 'platform-symptoms', rules: symptomAlertRules(url) }];
}

export function alertingRules(groups: readonly RuleGroup[]): AlertingRule[] {
  return groups.flatMap((g) => g.rules.filter(isAlertingRule));
}
