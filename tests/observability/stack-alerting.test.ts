import { parse } from 'yaml';
import { ROUTE_CLASSES } from '../../services/contract';
import { evaluate, type EvaluationReport } from '../../tools/offline/evaluate';
import { captureStack, redactSecrets } from '../../tools/offline/capture';
import type { CapturedStack } from '../../tools/offline/types';
import { one, ofType } from '../infra/graph';
import { release, valuesOf, validateKubernetesObject, type Inputs } from './stack';

/** Receiver credentials and a Grafana ingress set the way an operator sets them (`pulumi config set --secret`). */
const SLACK_URL = 'https://hooks.slack.com/services/T0PLATFORM/B0ALERTS/s3cr3tW3bh00kT0k3n';
const ROUTING_KEY = 'R0ut1ngK3yOfPagerDuty0123456789a';
const OIDC_SECRET = 'oidc-client-s3cr3t-value';

let stack: CapturedStack;
let report: EvaluationReport;
beforeAll(async () => {
  stack = await captureStack('prod', {
    config: {
      'platform-kit:alertSlackWebhookUrl': SLACK_URL,
      'platform-kit:alertPagerDutyRoutingKey': ROUTING_KEY,
      'platform-kit:grafanaOidcClientSecret': OIDC_SECRET,
      'platform-kit:observability.grafana': JSON.stringify({
        ingress: {
          host: 'grafana.platform-kit.example.com',
          certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/0f6e1c8a-1111-2222-3333-444455556666',
          oidc: {
            issuer: 'https://login.example.com',
            authorizationEndpoint: 'https://login.example.com/authorize',
            tokenEndpoint: 'https://login.example.com/token',
            userInfoEndpoint: 'https://login.example.com/userinfo',
            clientId: 'grafana',
          },
        },
      }),
    },
  });
  report = await evaluate({ stack: 'prod', project: stack.project, resources: stack.resources });
});

describe('prod with receiver credentials and a Grafana ingress', () => {
  it('routes pages to PagerDuty and Slack, tickets to Slack, reading both credentials from mounted files', () => {
    const config = parse((valuesOf(release(stack, 'kube-prometheus-stack')).alertmanager as Inputs).stringConfig as string) as { receivers: Inputs[] };
    const page = config.receivers.find((r) => r.name === 'page') as Inputs;
    expect(page.pagerduty_configs).toEqual([expect.objectContaining({ routing_key_file: '/etc/alertmanager/secrets/alertmanager-receivers/pagerduty-routing-key' })]);
    expect(page.slack_configs).toEqual([expect.objectContaining({ api_url_file: '/etc/alertmanager/secrets/alertmanager-receivers/slack-webhook-url', channel: '#platform-pages' })]);
    expect((config.receivers.find((r) => r.name === 'ticket') as Inputs).slack_configs).toEqual([expect.objectContaining({ channel: '#platform-alerts' })]);
  });

  it('keeps the credentials secret from stack config to the cluster: in the Secret only, never in plain inputs or outputs', () => {
    const receivers = one(stack, 'kubernetes:core/v1:Secret', 'observability-alertmanager-receivers');
    expect(receivers.inputs.stringData).toEqual({ 'slack-webhook-url': SLACK_URL, 'pagerduty-routing-key': ROUTING_KEY });
    expect(receivers.secretPaths).toContain('stringData');
    const oidc = one(stack, 'kubernetes:core/v1:Secret', 'observability-grafana-oidc');
    expect(oidc.secretPaths.some((p) => p.startsWith('stringData'))).toBe(true);
    const visible = JSON.stringify(stack.resources.map((r) => redactSecrets(r.inputs, r.secretPaths))) + JSON.stringify(stack.outputs);
    for (const secret of [SLACK_URL, ROUTING_KEY, OIDC_SECRET]) expect(visible).not.toContain(secret);
  });

  it('publishes Grafana only behind ALB OIDC authentication, and the policy pack agrees', async () => {
    const ingress = one(stack, 'kubernetes:networking.k8s.io/v1:Ingress', 'observability-grafana-ingress');
    const annotations = (ingress.inputs.metadata as Inputs).annotations as Record<string, string>;
    expect(annotations['alb.ingress.kubernetes.io/auth-type']).toBe('oidc');
    expect(JSON.parse(annotations['alb.ingress.kubernetes.io/auth-idp-oidc'] as string)).toMatchObject({ secretName: 'grafana-oidc', issuer: 'https://login.example.com' });
    // Behind the stack's web ACL, the api's, and with Grafana's own /metrics and the probe paths answered by the load balancer.
    const webAcl = one(stack, 'aws:wafv2/webAcl:WebAcl');
    expect(ingress.propertyDependencies?.metadata).toContain(webAcl.urn);
    expect(annotations['alb.ingress.kubernetes.io/wafv2-acl-arn']).toMatch(/^arn:aws:wafv2:/);
    const paths = (ingress.inputs.spec as { rules: { http: { paths: { path: string; pathType: string; backend: { service: { name: string; port: Inputs } } }[] } }[] }).rules[0]?.http.paths ?? [];
    const inCluster = paths.filter((p) => p.backend.service.port.name === 'use-annotation');
    expect(inCluster.map((p) => [p.path, p.pathType]).sort()).toEqual(ROUTE_CLASSES.operational.map((p) => [p, 'Exact']).sort());
    for (const p of inCluster) expect(JSON.parse(annotations[`alb.ingress.kubernetes.io/actions.${p.backend.service.name}`] as string)).toMatchObject({ type: 'fixed-response', fixedResponseConfig: { statusCode: '404' } });
    expect((valuesOf(release(stack, 'kube-prometheus-stack')).grafana as Inputs)['grafana.ini']).toMatchObject({ server: { root_url: 'https://grafana.platform-kit.example.com/' }, security: { cookie_secure: true } });
    await validateKubernetesObject(ingress);
    // Grafana is reached through that Ingress (or a port-forward), never a Service of its own exposed by the stack.
    expect(ofType(stack, 'kubernetes:core/v1:Service').filter((r) => r.urn.includes('platform-kit:observability:Observability$'))).toEqual([]);
    expect(report.results.filter((r) => r.violations.length > 0).map((r) => r.policy)).toEqual([]);
  });
});
