/**
 * Alertmanager's configuration, rendered from the stack's plain settings. Credentials are
 * never part of it: each integration reads its URL or key from a file that Alertmanager
 * mounts from a Secret (`api_url_file`, `routing_key_file`), so the configuration itself can
 * be printed, diffed and checked with `amtool check-config`, and the secret stays a Pulumi
 * secret from stack config to the cluster.
 */

/** Where the operator mounts Secrets listed in `alertmanagerSpec.secrets`. */
export const ALERTMANAGER_SECRETS_DIR = '/etc/alertmanager/secrets';
/** The Secret holding the receivers' credentials, and its keys. */
export const RECEIVER_SECRET = { name: 'alertmanager-receivers', slackWebhookUrl: 'slack-webhook-url', pagerDutyRoutingKey: 'pagerduty-routing-key' } as const;

export interface AlertRoutingOptions {
  /** Post alerts to Slack (or a Slack-compatible webhook): page and ticket channels. Omit for none. */
  slack?: { pageChannel: string; ticketChannel: string };
  /** Page through PagerDuty (Events API v2) as well. */
  pagerDuty?: boolean;
}

export interface AlertmanagerConfig {
  global: Record<string, unknown>;
  route: Route;
  inhibit_rules: { source_matchers: string[]; target_matchers: string[]; equal: string[] }[];
  receivers: { name: string; [integration: string]: unknown }[];
}

interface Route {
  receiver: string;
  group_by?: string[];
  group_wait?: string;
  group_interval?: string;
  repeat_interval?: string;
  matchers?: string[];
  routes?: Route[];
}

const secretFile = (key: string) => `${ALERTMANAGER_SECRETS_DIR}/${RECEIVER_SECRET.name}/${key}`;

/**
 * Route tree: `page` (our `severity="page"` and the bundled rules' `critical`) to the paging
 * receiver, `ticket` (and `warning`) to the ticket receiver, the always-firing Watchdog and
 * informational alerts nowhere. A page silences the ticket of the same alert and SLO.
 */
export function alertmanagerConfig(options: AlertRoutingOptions): AlertmanagerConfig {
  const slack = (channel: string) => ({
    api_url_file: secretFile(RECEIVER_SECRET.slackWebhookUrl),
    channel,
    send_resolved: true,
    title: '[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ .CommonLabels.alertname }}',
    text: '{{ range .Alerts }}*{{ .Annotations.summary }}*\n{{ .Annotations.description }}\nRunbook: {{ .Annotations.runbook_url }}\n{{ end }}',
  });
  const page: Record<string, unknown> = { name: 'page' };
  const ticket: Record<string, unknown> = { name: 'ticket' };
  if (options.slack) {
    page.slack_configs = [slack(options.slack.pageChannel)];
    ticket.slack_configs = [slack(options.slack.ticketChannel)];
  }
  if (options.pagerDuty) {
    page.pagerduty_configs = [{ routing_key_file: secretFile(RECEIVER_SECRET.pagerDutyRoutingKey), send_resolved: true, description: '{{ .CommonAnnotations.summary }}', links: [{ href: '{{ (index .Alerts 0).Annotations.runbook_url }}', text: 'Runbook' }] }];
  }
  return {
    global: { resolve_timeout: '5m' },
    route: {
      receiver: 'ticket',
      group_by: ['alertname', 'slo', 'namespace'],
      group_wait: '30s',
      group_interval: '5m',
      repeat_interval: '12h',
      routes: [
        { receiver: 'null', matchers: ['alertname=~"Watchdog|InfoInhibitor"'] },
        { receiver: 'null', matchers: ['severity=~"info|none"'] },
        { receiver: 'page', matchers: ['severity=~"page|critical"'], repeat_interval: '1h' },
        { receiver: 'ticket', matchers: ['severity=~"ticket|warning"'] },
      ],
    },
    inhibit_rules: [
      { source_matchers: ['severity=~"page|critical"'], target_matchers: ['severity=~"ticket|warning"'], equal: ['alertname', 'slo', 'namespace'] },
      // The SLO's fast burn covers its slow burn.
      { source_matchers: ['severity="page"', 'slo=~".+"'], target_matchers: ['severity="ticket"', 'slo=~".+"'], equal: ['slo'] },
    ],
    receivers: [{ name: 'null' }, page as AlertmanagerConfig['receivers'][number], ticket as AlertmanagerConfig['receivers'][number]],
  };
}
