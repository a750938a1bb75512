import type { PolicyResource } from '@pulumi/policy';
import { type PlatformPolicy, at, dependencyClosure, describe, known, str, stackPolicy } from '../lib/policy';
import { HELM_CHART_V3, HELM_CHART_V4, HELM_RELEASE } from '../lib/kube';

export const MONITORING_CR_TYPES = [
  'kubernetes:monitoring.coreos.com/v1:ServiceMonitor',
  'kubernetes:monitoring.coreos.com/v1:PodMonitor',
  'kubernetes:monitoring.coreos.com/v1:PrometheusRule',
];
const CRD = 'kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition';
/** Charts that install the monitoring.coreos.com CRDs. */
const CRD_CHARTS = /(^|\/)(kube-prometheus-stack|prometheus-operator-crds|prometheus-operator)$/;

function installsMonitoringCrds(r: PolicyResource): boolean {
  if (r.type === CRD) return (known(() => str(at(r.props, 'spec', 'group'))) ?? '') === 'monitoring.coreos.com';
  if (r.type === HELM_RELEASE || r.type === HELM_CHART_V3 || r.type === HELM_CHART_V4) {
    return CRD_CHARTS.test(known(() => str(r.props.chart)) ?? '');
  }
  return false;
}

export const monitoringCrdPolicies: PlatformPolicy[] = [
  stackPolicy({
    name: 'platform-monitoring-crds-dependency',
    description:
      'Every ServiceMonitor, PodMonitor and PrometheusRule depends (directly, through dependsOn, or through a parent component) on the resource that installs the monitoring.coreos.com CRDs: the kube-prometheus-stack or prometheus-operator-crds chart, or the CRD itself. Otherwise a fresh `pulumi up` races the chart and fails with "no matches for kind".',
    control: { framework: 'Platform Kit', id: 'crd-ordering' },
    concern: 'resilience',
    severity: 'medium',
    remediation: 'Pass { dependsOn: [prometheusStackRelease] } (or the component that owns it) when creating the ServiceMonitor or PrometheusRule.',
    types: [...MONITORING_CR_TYPES, HELM_RELEASE, HELM_CHART_V3, HELM_CHART_V4, CRD],
    validate: (resources, _args, report) => {
      for (const cr of resources.filter((r) => MONITORING_CR_TYPES.includes(r.type))) {
        if (!dependencyClosure(cr).some(installsMonitoringCrds)) {
          report(`${describe(cr)} does not depend on the chart or CRD that defines ${cr.type.split(':').pop()}.`, cr.urn);
        }
      }
    },
  }),
];
