import type * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { PATHS, PUBLIC_ROUTES } from '../../services/contract';

/** TLS 1.3 and 1.2 with forward-secret AEAD ciphers only (no CBC, no TLS 1.0/1.1). */
export const ALB_SSL_POLICY = 'ELBSecurityPolicy-TLS13-1-2-Res-2021-06';

export interface IngressSettings {
  /** Public host name, e.g. api.example.com. */
  domain: string;
  /** ACM certificate for the domain (validated). */
  certificateArn: pulumi.Input<string>;
  /** Public subnets the internet-facing ALB goes into. */
  publicSubnetIds: pulumi.Input<string[]>;
  /** Name of the ALB (≤ 32 characters), so operators find it in the console. */
  loadBalancerName: string;
  /** WAFv2 web ACL to attach. Default none. */
  webAclArn?: pulumi.Input<string>;
}

/** Problems with the settings, empty when they are usable. Pure. */
export function validateIngressSettings(s: Pick<IngressSettings, 'loadBalancerName' | 'domain'>): string[] {
  const problems: string[] = [];
  if (!/^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,30}[a-zA-Z0-9])?$/.test(s.loadBalancerName)) problems.push(`loadBalancerName ${s.loadBalancerName} must be 1–32 letters, digits or dashes, not starting or ending with a dash`);
  if (s.domain.startsWith('*.')) problems.push(`domain ${s.domain} must name one host`);
  return problems;
}

/**
 * Annotations of the AWS Load Balancer Controller: an internet-facing ALB in the public
 * subnets sending to pod IPs, HTTPS on 443 with the stack's certificate and a modern TLS
 * policy, HTTP on 80 only to redirect, health checks on the readiness path, malformed
 * header fields dropped, a short deregistration delay the api's preStop sleep covers,
 * and the WAF web ACL where the stack has one.
 */
export function ingressAnnotations(s: IngressSettings): pulumi.Output<Record<string, string>> {
  return pulumi.all([s.certificateArn, s.publicSubnetIds, s.webAclArn]).apply(([certificateArn, subnets, webAclArn]): Record<string, string> => ({
    'alb.ingress.kubernetes.io/scheme': 'internet-facing',
    'alb.ingress.kubernetes.io/target-type': 'ip',
    'alb.ingress.kubernetes.io/load-balancer-name': s.loadBalancerName,
    'alb.ingress.kubernetes.io/subnets': subnets.join(','),
    'alb.ingress.kubernetes.io/listen-ports': JSON.stringify([{ HTTP: 80 }, { HTTPS: 443 }]),
    'alb.ingress.kubernetes.io/ssl-redirect': '443',
    'alb.ingress.kubernetes.io/certificate-arn': certificateArn,
    'alb.ingress.kubernetes.io/ssl-policy': ALB_SSL_POLICY,
    'alb.ingress.kubernetes.io/backend-protocol': 'HTTP',
    'alb.ingress.kubernetes.io/healthcheck-path': PATHS.readyz,
    'alb.ingress.kubernetes.io/healthcheck-interval-seconds': '10',
    'alb.ingress.kubernetes.io/healthy-threshold-count': '2',
    'alb.ingress.kubernetes.io/unhealthy-threshold-count': '2',
    'alb.ingress.kubernetes.io/success-codes': '200',
    'alb.ingress.kubernetes.io/load-balancer-attributes': 'routing.http.drop_invalid_header_fields.enabled=true',
    'alb.ingress.kubernetes.io/target-group-attributes': 'deregistration_delay.timeout_seconds=30',
    ...(webAclArn ? { 'alb.ingress.kubernetes.io/wafv2-acl-arn': webAclArn } : {}),
  }));
}

/**
 * One rule for the domain routing exactly the contract's public routes to the api Service;
 * anything else (`/metrics`, `/healthz`, `/readyz`, unknown paths) matches no rule and gets
 * the controller's fixed 404 without reaching a pod.
 */
export function ingressRules(domain: string, service: { name: pulumi.Input<string>; port: string }): k8s.types.input.networking.v1.IngressRule[] {
  return [
    {
      host: domain,
      http: {
        paths: PUBLIC_ROUTES.map((route) => ({
          path: route.path,
          pathType: route.match === 'exact' ? 'Exact' : 'Prefix',
          backend: { service: { name: service.name, port: { name: service.port } } },
        })),
      },
    },
  ];
}
