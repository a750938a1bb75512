import type { StackConfig } from '../config';
import { alertmanagerConfig, type AlertmanagerConfig, type AlertRoutingOptions } from './alertmanager';
import { platformRuleGroups } from './rules';
import type { RuleGroup } from './rule-types';

/** Secret stack keys the alert routing reads. */
export const ALERTING_SECRETS = { slack: 'alertSlackWebhookUrl', pagerDuty: 'alertPagerDutyRoutingKey' } as const;

export interface RenderedAlerting {
  ruleGroups: RuleGroup[];
  alertmanager: AlertmanagerConfig;
  /** The routing actually rendered: an integration without its secret is left out. */
  routing: AlertRoutingOptions;
  /** What an operator should know (an integration configured without its credentials). */
  warnings: string[];
}

/**
 * Rules and Alertmanager configuration exactly as a stack renders them, from its plain
 * config and the names of the secret keys it sets (never their values). Used by the Pulumi
 * component, by `npm run rules` and by the local Prometheus of `npm start -- --observe`.
 */
export function renderAlerting(observability: Pick<StackConfig['observability'], 'runbookBaseUrl' | 'alerting'>, secretsSet: ReadonlySet<string>): RenderedAlerting {
  const warnings: string[] = [];
  const { slack, pagerDuty } = observability.alerting;
  const routing: AlertRoutingOptions = {};
  if (slack) {
    if (secretsSet.has(ALERTING_SECRETS.slack)) routing.slack = slack;
    else warnings.push(`alerting.slack is configured but platform-kit:${ALERTING_SECRETS.slack} is not set, so no alert reaches Slack: pulumi config set --secret platform-kit:${ALERTING_SECRETS.slack} <webhook URL>`);
  }
  if (pagerDuty) {
    if (secretsSet.has(ALERTING_SECRETS.pagerDuty)) routing.pagerDuty = true;
    else warnings.push(`alerting.pagerDuty is true but platform-kit:${ALERTING_SECRETS.pagerDuty} is not set, so nothing pages: pulumi config set --secret platform-kit:${ALERTING_SECRETS.pagerDuty} <routing key>`);
  }
  if (!routing.slack && !routing.pagerDuty) warnings.push('no alert receiver has credentials: alerts are visible in Alertmanager and Grafana only');
  return { ruleGroups: platformRuleGroups({ runbookBaseUrl: observability.runbookBaseUrl }), alertmanager: alertmanagerConfig(routing), routing, warnings };
}
