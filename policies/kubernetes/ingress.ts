import { PATHS } from '../../services/contract/http';
import { INGRESS, labelsOf } from '../lib/kube';
import { type PlatformPolicy, type Props, arr, at, describe, obj, resourcePolicy, str } from '../lib/policy';

const ANNOTATION = 'alb.ingress.kubernetes.io/';

/** ALB security policies that allow TLS 1.2 and 1.3 only with forward-secret ciphers. */
const MODERN_TLS_POLICIES = /^ELBSecurityPolicy-(TLS13-1-[23]-(Res-)?(PQ-)?20\d\d-\d\d|FS-1-2-(Res-)?20\d\d-\d\d)$/;

/** Endpoints for probes and Prometheus inside the cluster; the internet never reaches them. */
const INTERNAL_PATHS = [PATHS.metrics, PATHS.healthz, PATHS.readyz];

function isAlb(props: Props): boolean {
  const annotations = labelsOf(at(props, 'metadata', 'annotations'));
  return str(at(props, 'spec', 'ingressClassName')) === 'alb' || annotations['kubernetes.io/ingress.class'] === 'alb';
}

/** Whether an ingress path (as the ALB matches it) routes `request`. */
function routes(path: string, pathType: string, request: string): boolean {
  if (pathType === 'Exact') return request === path;
  const base = path.replace(/\/+$/, '');
  return base === '' || request === base || request.startsWith(`${base}/`);
}

function problemsOf(props: Props, requireWebAcl: boolean): string[] {
  const a = labelsOf(at(props, 'metadata', 'annotations'));
  const problems: string[] = [];
  let ports: Record<string, number>[] = [];
  try {
    ports = JSON.parse(a[`${ANNOTATION}listen-ports`] ?? '[{"HTTP":80}]') as Record<string, number>[];
  } catch {
    problems.push('listen-ports is not JSON');
  }
  const https = ports.some((p) => p.HTTPS !== undefined);
  const http = ports.some((p) => p.HTTP !== undefined);
  if (!https) problems.push('it listens on no HTTPS port (alb.ingress.kubernetes.io/listen-ports)');
  if (!a[`${ANNOTATION}certificate-arn`]) problems.push('it names no ACM certificate (alb.ingress.kubernetes.io/certificate-arn)');
  if (http && !a[`${ANNOTATION}ssl-redirect`]) problems.push('its HTTP listener serves instead of redirecting to HTTPS (alb.ingress.kubernetes.io/ssl-redirect)');
  const policy = a[`${ANNOTATION}ssl-policy`];
  if (!policy || !MODERN_TLS_POLICIES.test(policy)) problems.push(`its TLS policy ${policy ?? '(the default, which allows TLS 1.0)'} is not a TLS 1.2+ forward-secret one such as ELBSecurityPolicy-TLS13-1-2-Res-2021-06`);
  if (requireWebAcl && !a[`${ANNOTATION}wafv2-acl-arn`]) problems.push('it has no WAF web ACL (alb.ingress.kubernetes.io/wafv2-acl-arn)');
  const paths = arr(at(props, 'spec', 'rules')).flatMap((rule) => arr(at(rule, 'http', 'paths')).map(obj).filter((p): p is Props => p !== undefined));
  if (obj(at(props, 'spec', 'defaultBackend'))) problems.push('it has a default backend, which routes every path');
  for (const internal of INTERNAL_PATHS) {
    const exposing = paths.filter((p) => routes(str(p.path) ?? '/', str(p.pathType) ?? 'Prefix', internal));
    if (exposing.length > 0) problems.push(`it routes ${internal} to the internet (path ${exposing.map((p) => `${str(p.pathType) ?? 'Prefix'} ${str(p.path) ?? '/'}`).join(', ')})`);
  }
  return problems;
}

export const ingressPolicies: PlatformPolicy[] = [
  resourcePolicy<{ requireWebAcl: boolean }>({
    name: 'kubernetes-ingress-alb-https-only',
    description:
      'An internet-facing ALB Ingress serves HTTPS only: a listener on 443 with an ACM certificate, HTTP on 80 (if any) only to redirect, a TLS 1.2+ forward-secret security policy, no default backend and no path that routes the in-cluster endpoints (/metrics, /healthz, /readyz). With `requireWebAcl` (prod) it also names a WAFv2 web ACL.',
    control: { framework: 'AWS FSBP', id: 'ELB.1 / ELB.17 / WAF', url: 'https://docs.aws.amazon.com/securityhub/latest/userguide/elb-controls.html' },
    concern: 'security',
    severity: 'high',
    remediation:
      'Annotate the Ingress with listen-ports [{"HTTP":80},{"HTTPS":443}], ssl-redirect "443", certificate-arn, ssl-policy ELBSecurityPolicy-TLS13-1-2-Res-2021-06 (and wafv2-acl-arn in prod), and route only the public paths (services/contract PUBLIC_ROUTES).',
    types: [INGRESS],
    config: {
      schema: { properties: { requireWebAcl: { type: 'boolean', default: true } } },
      perStack: { dev: { requireWebAcl: false }, prod: { requireWebAcl: true } },
    },
    validate: (props, args, report) => {
      if (!isAlb(props)) return;
      const scheme = labelsOf(at(props, 'metadata', 'annotations'))[`${ANNOTATION}scheme`];
      if (scheme !== 'internet-facing') return;
      const problems = problemsOf(props, args.config.requireWebAcl);
      if (problems.length > 0) report(`${describe(args)} is internet-facing but ${problems.join('; ')}.`);
    },
  }),
];
