import { type PlatformPolicy, at, describe, resourcePolicy, str } from '../lib/policy';
import { LONG_RUNNING_TYPES, SERVICE, WORKLOAD_TYPES, containersOf, namespaceOf, podSpecOf } from '../lib/kube';

/**
 * Splits an image reference into its tag and digest. The tag is the part after the last
 * `:` of the final path segment, so a registry port (`registry:5000/app`) is not a tag.
 */
export function imageRef(image: string): { tag?: string; digest?: string } {
  const [name = '', digest] = image.split('@');
  const last = name.slice(name.lastIndexOf('/') + 1);
  const colon = last.lastIndexOf(':');
  return { tag: colon >= 0 ? last.slice(colon + 1) : undefined, digest };
}

export function imageProblem(image: string | undefined): string | undefined {
  if (!image) return 'has no image';
  const { tag, digest } = imageRef(image);
  if (digest) return undefined;
  if (!tag) return `uses the untagged image ${image} (implicitly :latest)`;
  if (tag === 'latest') return `uses ${image}`;
  return undefined;
}

export const workloadPolicies: PlatformPolicy[] = [
  resourcePolicy<{ requiredRequests: string[]; requiredLimits: string[] }>({
    name: 'kubernetes-container-resources',
    description:
      'Every container (init containers included) declares requests for `requiredRequests` (cpu, memory) and limits for `requiredLimits` (memory), so the scheduler can place it and one leak cannot starve a node. CPU limits are not required by default: they throttle a latency-sensitive API long before the node is busy.',
    control: { framework: 'Kubernetes best practices', id: 'resources', url: 'https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/' },
    concern: 'resilience',
    severity: 'medium',
    remediation: 'Set resources { requests: { cpu, memory }, limits: { memory } } on every container, sized from the load tests in bench/.',
    types: WORKLOAD_TYPES,
    config: {
      schema: {
        properties: {
          requiredRequests: { type: 'array', items: { type: 'string' }, default: ['cpu', 'memory'] },
          requiredLimits: { type: 'array', items: { type: 'string' }, default: ['memory'] },
        },
      },
      perStack: {
        dev: { requiredRequests: ['cpu', 'memory'], requiredLimits: ['memory'] },
        prod: { requiredRequests: ['cpu', 'memory'], requiredLimits: ['memory'] },
      },
    },
    validate: (props, args, report) => {
      const pod = podSpecOf(args.type, props);
      if (!pod) return;
      for (const c of containersOf(pod)) {
        if (c.kind === 'ephemeralContainer') continue; // debug containers take no resources field
        const missing = [
          ...args.config.requiredRequests.filter((r) => at(c.spec, 'resources', 'requests', r) === undefined).map((r) => `requests.${r}`),
          ...args.config.requiredLimits.filter((r) => at(c.spec, 'resources', 'limits', r) === undefined).map((r) => `limits.${r}`),
        ];
        if (missing.length > 0) report(`${describe(args)} ${c.kind} '${c.name}' has no ${missing.join(', ')}.`);
      }
    },
  }),
  resourcePolicy({
    name: 'kubernetes-container-probes',
    description:
      'Every container of a long-running workload (Deployment, StatefulSet, DaemonSet, Pod) has a readinessProbe and a livenessProbe, so rollouts wait for ready pods and hung processes are restarted. Jobs and init containers are exempt.',
    control: { framework: 'Kubernetes best practices', id: 'probes', url: 'https://kubernetes.io/docs/concepts/configuration/liveness-readiness-startup-probes/' },
    concern: 'resilience',
    severity: 'medium',
    remediation: 'Point readinessProbe at /readyz and livenessProbe at /healthz (services/contract PATHS); add a startupProbe for slow starts.',
    types: LONG_RUNNING_TYPES,
    validate: (props, args, report) => {
      const pod = podSpecOf(args.type, props);
      if (!pod) return;
      for (const c of containersOf(pod).filter((x) => x.kind === 'container')) {
        const missing = ['readinessProbe', 'livenessProbe'].filter((p) => c.spec[p] === undefined);
        if (missing.length > 0) report(`${describe(args)} container '${c.name}' has no ${missing.join(' or ')}.`);
      }
    },
  }),
  resourcePolicy({
    name: 'kubernetes-image-pinned',
    description: 'Every container image names an explicit tag other than `latest`, or a digest; an untagged image means `latest`, so what runs would change without a deploy.',
    control: { framework: 'Kubernetes best practices', id: 'image-tags', url: 'https://kubernetes.io/docs/concepts/containers/images/#image-names' },
    concern: 'security',
    severity: 'medium',
    remediation: 'Reference the image by its immutable ECR tag (commit SHA) or by digest (repo@sha256:…).',
    types: WORKLOAD_TYPES,
    validate: (props, args, report) => {
      const pod = podSpecOf(args.type, props);
      if (!pod) return;
      for (const c of containersOf(pod)) {
        const problem = imageProblem(str(c.spec.image));
        if (problem) report(`${describe(args)} ${c.kind} '${c.name}' ${problem}.`);
      }
    },
  }),
  resourcePolicy<{ ingressControllerNamespaces: string[] }>({
    name: 'kubernetes-service-no-load-balancer',
    description:
      'No Service of type LoadBalancer outside the ingress controller\'s namespaces (`ingressControllerNamespaces`): traffic enters through the ALB Ingress, where TLS, WAF and auth live. A NodePort or LoadBalancer Service per app bypasses all of it.',
    control: { framework: 'Platform Kit', id: 'single-entry-point' },
    concern: 'security',
    severity: 'high',
    remediation: 'Make the Service ClusterIP and expose it through an Ingress (class alb).',
    types: [SERVICE],
    config: {
      schema: { properties: { ingressControllerNamespaces: { type: 'array', items: { type: 'string' }, default: ['ingress-nginx'] } } },
      perStack: { dev: { ingressControllerNamespaces: ['ingress-nginx'] }, prod: { ingressControllerNamespaces: ['ingress-nginx'] } },
    },
    validate: (props, args, report) => {
      const type = str(at(props, 'spec', 'type'));
      const ns = namespaceOf(props);
      if (type === 'LoadBalancer' && !args.config.ingressControllerNamespaces.includes(ns)) {
        report(`${describe(args)} in namespace '${ns}' is of type LoadBalancer; only the ingress controller (${args.config.ingressControllerNamespaces.join(', ')}) may be.`);
      }
    },
  }),
];
