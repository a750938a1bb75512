import { StackConfigError, parseStackConfig, secretProblem } from '../../platform/config';
import { validateObservabilityArgs, type ObservabilityArgs } from '../../platform/observability';
import { readStackFile } from '../../tools/observability/stack-file';

function rawProd(): Record<string, unknown> {
  const { config } = readStackFile('prod');
  return JSON.parse(JSON.stringify(config)) as Record<string, unknown>;
}

function errorOf(mutate: (raw: Record<string, Record<string, unknown>>) => void): string {
  const raw = rawProd() as Record<string, Record<string, unknown>>;
  mutate(raw);
  try {
    parseStackConfig(raw, 'prod');
  } catch (error) {
    expect(error).toBeInstanceOf(StackConfigError);
    return (error as Error).message;
  }
  throw new Error('the config was accepted');
}

describe('observability stack config', () => {
  it('accepts both stack files', () => {
    expect(readStackFile('dev').config.observability.loki.storage).toBe('filesystem');
    expect(readStackFile('prod').config.observability.loki.storage).toBe('s3');
  });

  it('takes no node group of its own: the stack runs on the system pool, and a stack file naming one is refused by key', () => {
    expect(errorOf((c) => ((c.observability as Record<string, unknown>).nodeGroup = 'system'))).toMatch(/^Pulumi\.prod\.yaml: platform-kit:observability\.nodeGroup is not a known key/);
    expect(errorOf((c) => ((c.observability as Record<string, unknown>).tolerations = []))).toMatch(/^Pulumi\.prod\.yaml: platform-kit:observability\.tolerations is not a known key/);
  });

  it('refuses a stack whose node groups serve no system pool, where the monitoring stack would have nowhere to run', () => {
    expect(
      errorOf((c) => {
        const groups = (c.cluster as Record<string, unknown>).nodeGroups as Record<string, unknown>[];
        (c.cluster as Record<string, unknown>).nodeGroups = groups.filter((g) => !(g.roles as string[]).includes('system'));
      }),
    ).toMatch(/platform-kit:cluster\.nodeGroups must include a group serving the system role \(cluster add-ons and the monitoring stack select it\)/);
  });

  it('refuses a Loki retention longer than the bucket keeps chunks', () => {
    expect(errorOf((c) => (((c.observability as Record<string, Record<string, unknown>>).loki as Record<string, unknown>).retentionDays = 120))).toMatch(
      /^Pulumi\.prod\.yaml: platform-kit:observability\.loki\.retentionDays must not exceed storage\.lokiChunksExpireDays \(90\)/,
    );
  });

  it('refuses several Loki replicas on filesystem storage, a Prometheus retention shorter than the slow burn window, a chart range', () => {
    expect(errorOf((c) => Object.assign((c.observability as Record<string, Record<string, unknown>>).loki as object, { storage: 'filesystem', replicas: 2 }))).toMatch(/observability\.loki\.replicas must be 1 with filesystem storage/);
    expect(errorOf((c) => Object.assign((c.observability as Record<string, Record<string, unknown>>).prometheus as object, { retentionDays: 2 }))).toMatch(/observability\.prometheus\.retentionDays must be at least 4/);
    expect(errorOf((c) => Object.assign((c.observability as Record<string, Record<string, unknown>>).charts as object, { loki: '^7.3.0' }))).toMatch(/observability\.charts\.loki must be an exact chart version/);
  });

  it('checks secret values without ever echoing them', () => {
    expect(secretProblem('alertSlackWebhookUrl', 'https://hooks.slack.com/services/T0/B0/x', 'prod')).toBeUndefined();
    const problem = secretProblem('alertSlackWebhookUrl', 'http://hooks.example.com/leaked-token', 'prod');
    expect(problem).toBe('Pulumi.prod.yaml: platform-kit:alertSlackWebhookUrl must be an https webhook URL (the value is secret and not shown)');
    expect(problem).not.toContain('leaked-token');
    expect(secretProblem('alertPagerDutyRoutingKey', 'short', 'dev')).toMatch(/32-character/);
  });
});

describe('validateObservabilityArgs', () => {
  const base: ObservabilityArgs = {
    stack: 'prod',
    provider: undefined as unknown as ObservabilityArgs['provider'],
    ready: [],
    appNamespace: 'platform',
    vpcCidr: '10.30.0.0/16',
    runbookBaseUrl: 'https://example.com/runbooks',
    prometheus: {},
    loki: {},
    charts: { kubePrometheusStack: '88.5.3', prometheusOperatorCrds: '31.0.1', loki: '7.3.0', alloy: '1.11.1' },
  };

  it('accepts sensible args and explains each bad one', () => {
    expect(validateObservabilityArgs(base)).toEqual([]);
    expect(validateObservabilityArgs({ ...base, loki: { replicas: 2 } })).toEqual(['loki.replicas > 1 needs S3 storage: replicas cannot share a volume']);
    expect(validateObservabilityArgs({ ...base, charts: { ...base.charts, alloy: 'latest' } })).toEqual(['charts.alloy latest must be an exact version such as 1.2.3']);
    expect(validateObservabilityArgs({ ...base, appNamespace: 'monitoring' })).toEqual(['appNamespace must not be monitoring, which the monitoring stack owns']);
    expect(validateObservabilityArgs({ ...base, alerting: { slack: { pageChannel: '#a', ticketChannel: '#b' } } })).toEqual(['alerting.slack needs slackWebhookUrl']);
    const s3 = { bucket: { name: 'b', arn: 'arn:aws:s3:::b' }, bucketKeyArn: 'k', bucketExpireDays: 7, oidc: { providerArn: 'p', issuer: 'i' }, region: 'eu-west-1' };
    expect(validateObservabilityArgs({ ...base, loki: { retentionDays: 30, s3 } })).toEqual([
      "loki bucket expires objects after 7 days, before Loki's retention of 30 days: the index would point at deleted chunks",
    ]);
  });
});
