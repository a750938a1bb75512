import type { PolicyResource } from '@pulumi/policy';
import { type PlatformPolicy, dependencyClosure, describe, known, stackPolicy, str } from '../lib/policy';
import { HELM_CHART_V3, HELM_CHART_V4, HELM_RELEASE, INGRESS, SERVICE } from '../lib/kube';

const CHART_TYPES = [HELM_RELEASE, HELM_CHART_V3, HELM_CHART_V4];

interface Admitter {
  /** Who admits the objects, for messages. */
  label: string;
  /** The chart that installs its webhooks and CRDs. */
  chart: RegExp;
  /** Whether an object of this type passes its webhooks or is one of its custom resources. */
  admits: (type: string) => boolean;
  /** Charts installed after it may render such objects, so they wait too. */
  gatesCharts: boolean;
}

/** Controllers whose admission webhooks (failurePolicy Fail) or CRDs an object needs in place before it can be created. */
export const ADMITTERS: readonly Admitter[] = [
  {
    label: 'AWS Load Balancer Controller',
    chart: /(^|\/)aws-load-balancer-controller$/,
    admits: (type) => type === INGRESS || type === SERVICE || type.startsWith('kubernetes:elbv2.k8s.aws/'),
    gatesCharts: true,
  },
  { label: 'KEDA', chart: /(^|\/)keda$/, admits: (type) => type.startsWith('kubernetes:keda.sh/') || type.startsWith('kubernetes:eventing.keda.sh/'), gatesCharts: false },
];

function installs(r: PolicyResource, admitter: Admitter): boolean {
  return CHART_TYPES.includes(r.type) && admitter.chart.test(known(() => str(r.props.chart)) ?? '');
}

export const admissionPolicies: PlatformPolicy[] = [
  stackPolicy({
    name: 'kubernetes-admission-webhook-ordering',
    description:
      'Objects that pass a controller\'s admission webhooks or are its custom resources depend (through dependsOn, an input or a parent) on the chart that installs it: Services, Ingresses and elbv2.k8s.aws resources on the AWS Load Balancer Controller, keda.sh resources on KEDA; with the Load Balancer Controller in the stack, other charts wait for it too (they render Services and Ingresses). Otherwise a fresh `up` races the webhook and fails with "no endpoints available for service", or with "no matches for kind".',
    control: { framework: 'Platform Kit', id: 'webhook-ordering' },
    concern: 'resilience',
    severity: 'medium',
    remediation: 'Pass the cluster component\'s `ready` list (it holds the controller and KEDA releases) as dependsOn of every Kubernetes object and chart created after the cluster.',
    types: [...CHART_TYPES, INGRESS, SERVICE],
    validate: (resources, _args, report) => {
      for (const admitter of ADMITTERS) {
        const installers = resources.filter((r) => installs(r, admitter));
        // What the installer itself waits for cannot wait for it.
        const before = new Set(installers.flatMap((i) => dependencyClosure(i).map((d) => d.urn)));
        const gated = resources.filter(
          (r) => !installers.includes(r) && !before.has(r.urn) && (admitter.admits(r.type) || (admitter.gatesCharts && installers.length > 0 && CHART_TYPES.includes(r.type))),
        );
        for (const r of gated) {
          if (installers.length === 0) {
            if (r.type !== SERVICE && !CHART_TYPES.includes(r.type)) report(`${describe(r)} needs the ${admitter.label}, which this stack does not install.`, r.urn);
            continue;
          }
          const closure = new Set(dependencyClosure(r).map((d) => d.urn));
          if (!installers.some((i) => closure.has(i.urn))) report(`${describe(r)} does not wait for the ${admitter.label} (${installers.map((i) => i.name).join(', ')}), whose webhooks or CRDs admit it.`, r.urn);
        }
      }
    },
  }),
];
