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

interface IngressPath {
  path: string;
  pathType: string;
  /** The backend Service's name, or the `actions.<name>` annotation it points at. */
  service?: string;
  port?: string;
}

/** Whether an ingress path (as the ALB matches it) matches `request`. */
function matches(p: IngressPath, request: string): boolean {
  if (p.pathType === 'Exact') return request === p.path;
  const base = p.path.replace(/\/+$/, '');
  return base === '' || request === base || request.startsWith(`${base}/`);
}

/**
 * The path whose listener rule answers `request`, in the controller's order (v2.4.3 and
 * later): Exact paths first, then Prefix paths longest first, then the others as listed.
 */
function servingPath(paths: readonly IngressPath[], request: string): IngressPath | undefined {
  const rank = (p: IngressPath) => (p.pathType === 'Exact' ? 0 : p.pathType === 'Prefix' ? 1 : 2);
  const ordered = paths.map((p, index) => ({ p, index })).sort((a, b) => rank(a.p) - rank(b.p) || (rank(a.p) === 1 ? b.p.path.length - a.p.path.length : 0) || a.index - b.index);
  return ordered.find(({ p }) => matches(p, request))?.p;
}

/** A backend the load balancer answers itself: `port.name: use-annotation` with an `actions.<service>` fixed response. */
function isFixedResponse(p: IngressPath, annotations: Record<string, string>): boolean {
  if (p.port !== 'use-annotation' || !p.service) return false;
  try {
    return (JSON.parse(annotations[`${ANNOTATION}actions.${p.service}`] ?? 'null') as { type?: unknown } | null)?.type === 'fixed-response';
  } catch {
    return false;
  }
}

function pathsOf(props: Props): IngressPath[] {
  return arr(at(props, 'spec', 'rules')).flatMap((rule) =>
    arr(at(rule, 'http', 'paths'))
      .map(obj)
      .filter((p): p is Props => p !== undefined)
      .map((p) => ({ path: str(p.path) ?? '/', pathType: str(p.pathType) ?? 'Prefix', service: str(at(p, 'backend', 'service', 'name')), port: str(at(p, 'backend', 'service', 'port', 'name')) })),
  );
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
  if (obj(at(props, 'spec', 'defaultBackend'))) problems.push('it has a default backend, which routes every path');
  const paths = pathsOf(props);
  for (const internal of INTERNAL_PATHS) {
    const serving = servingPath(paths, internal);
    if (serving && !isFixedResponse(serving, a)) problems.push(`it routes ${internal} to the internet (path ${serving.pathType} ${serving.path})`);
  }
  return problems;
}

export const ingressPolicies: PlatformPolicy[] = [
  resourcePolicy<{ requireWebAcl: boolean }>({
    name: 'kubernetes-ingress-alb-https-only',
    description:
      'An internet-facing ALB Ingress serves HTTPS only: a listener on 443 with an ACM certificate, HTTP on 80 (if any) only to redirect, a TLS 1.2+ forward-secret security policy, no default backend, and the in-cluster endpoints (/metrics, /healthz, /readyz) either matched by no path or answered by the load balancer itself (a fixed-response action that outranks the catch-all). With `requireWebAcl` (prod) it also names a WAFv2 web ACL.',
    control: { framework: 'AWS FSBP', id: 'ELB.1 / ELB.17 / WAF', url: 'https://docs.aws.amazon.com/securityhub/latest/userguide/elb-controls.html' },
    concern: 'security',
    severity: 'high',
    remediation:
      'Annotate the Ingress with listen-ports [{"HTTP":80},{"HTTPS":443}], ssl-redirect "443", certificate-arn, ssl-policy ELBSecurityPolicy-TLS13-1-2-Res-2021-06 (and wafv2-acl-arn in prod), and route only the public paths (services/contract PUBLIC_ROUTES); an Ingress that needs a catch-all answers the in-cluster paths with Exact paths to a fixed-response action (alb.ingress.kubernetes.io/actions.<name>).',
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
