import { type PlatformPolicy, type Props, arr, at, describe, obj, resourcePolicy, str } from '../lib/policy';
import { HELM_CHART_V4, HELM_RELEASE, INGRESS, SERVICE, labelsOf } from '../lib/kube';

const AUTH_ANNOTATIONS: Record<string, (v: string) => boolean> = {
  'alb.ingress.kubernetes.io/auth-type': (v) => v === 'cognito' || v === 'oidc',
  'nginx.ingress.kubernetes.io/auth-url': (v) => v.length > 0,
  'nginx.ingress.kubernetes.io/auth-type': (v) => v === 'basic' || v === 'digest',
};

function backendServices(ingress: Props): string[] {
  const spec = obj(ingress.spec) ?? {};
  const names = [str(at(spec, 'defaultBackend', 'service', 'name'))];
  for (const rule of arr(spec.rules)) {
    for (const path of arr(at(rule, 'http', 'paths'))) names.push(str(at(path, 'backend', 'service', 'name')));
  }
  return names.filter((n): n is string => n !== undefined);
}

/** Grafana's anonymous access, whether installed alone or inside kube-prometheus-stack. */
function grafanaAnonymous(chart: string, values: unknown): boolean {
  const ini = chart.endsWith('grafana') ? at(values, 'grafana.ini') : chart.endsWith('kube-prometheus-stack') ? at(values, 'grafana', 'grafana.ini') : undefined;
  const enabled = at(ini, 'auth.anonymous', 'enabled');
  return enabled === true || enabled === 'true';
}

export const queueDashboardPolicies: PlatformPolicy[] = [
  resourcePolicy<{ dashboardPattern: string }>({
    name: 'platform-queue-dashboard-requires-auth',
    description:
      'A queue dashboard (Bull Board, Arena, Taskforce, or Grafana, which shows the queue dashboards) is never reachable without authentication: an Ingress routing to one carries an auth annotation (ALB cognito/oidc, nginx auth-url/basic), no dashboard Service is a LoadBalancer or NodePort, and Grafana\'s anonymous access stays off. Such UIs can pause, empty and replay queues. Platform Kit\'s own rule.',
    control: { framework: 'Platform Kit', id: 'queue-dashboard' },
    concern: 'security',
    severity: 'critical',
    remediation: 'Put the dashboard behind the ALB with alb.ingress.kubernetes.io/auth-type: oidc (or cognito), keep its Service ClusterIP, and leave grafana.ini auth.anonymous disabled. Admins use the API\'s /v1/admin/queues, which checks roles.',
    types: [INGRESS, SERVICE, HELM_RELEASE, HELM_CHART_V4],
    config: {
      schema: { properties: { dashboardPattern: { type: 'string', default: '(bull-?board|bullmq-?ui|arena|queue-?dash|taskforce|grafana)' } } },
      perStack: {
        dev: { dashboardPattern: '(bull-?board|bullmq-?ui|arena|queue-?dash|taskforce|grafana)' },
        prod: { dashboardPattern: '(bull-?board|bullmq-?ui|arena|queue-?dash|taskforce|grafana)' },
      },
    },
    validate: (props, args, report) => {
      const dashboard = new RegExp(args.config.dashboardPattern, 'i');
      const name = str(at(props, 'metadata', 'name')) ?? args.name;
      switch (args.type) {
        case INGRESS: {
          const targets = backendServices(props).filter((s) => dashboard.test(s));
          if (targets.length === 0 && !dashboard.test(name)) return;
          const annotations = labelsOf(at(props, 'metadata', 'annotations'));
          const authed = Object.entries(AUTH_ANNOTATIONS).some(([k, ok]) => annotations[k] !== undefined && ok(annotations[k] as string));
          if (!authed) report(`${describe(args)} exposes the queue dashboard ${targets.join(', ') || name} without an authentication annotation.`);
          return;
        }
        case SERVICE: {
          const type = str(at(props, 'spec', 'type'));
          if (dashboard.test(name) && (type === 'LoadBalancer' || type === 'NodePort')) {
            report(`${describe(args)} exposes the queue dashboard directly as a ${type} Service, bypassing the authenticated Ingress.`);
          }
          return;
        }
        default: {
          const chart = str(props.chart) ?? '';
          if (grafanaAnonymous(chart, props.values)) report(`${describe(args)} enables Grafana anonymous access, exposing the queue dashboards without login.`);
        }
      }
    },
  }),
];
