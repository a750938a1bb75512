import { type PlatformPolicy, type Props, at, describe, obj, resourcePolicy, str } from '../lib/policy';
import { HELM_CHART_V3, HELM_CHART_V4, HELM_RELEASE } from '../lib/kube';

export const HELM_TYPES = [HELM_RELEASE, HELM_CHART_V3, HELM_CHART_V4];

const EXACT_VERSION = /^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

function isLocalChart(chart: string): boolean {
  return chart.startsWith('.') || chart.startsWith('/') || chart.startsWith('file://');
}

/** Paths in Helm values where an image is pinned to `latest` (or a bare `tag: latest`). */
export function latestImagesInValues(values: unknown, path = 'values'): string[] {
  if (typeof values === 'string') {
    const ref = values.split('@')[0] ?? '';
    const last = ref.slice(ref.lastIndexOf('/') + 1);
    return last.endsWith(':latest') ? [path] : [];
  }
  if (Array.isArray(values)) return values.flatMap((v, i) => latestImagesInValues(v, `${path}[${i}]`));
  const o = obj(values);
  if (!o) return [];
  return Object.entries(o).flatMap(([k, v]) =>
    k === 'tag' && v === 'latest' ? [`${path}.${k}`] : /image|repository/i.test(k) || typeof v === 'object' ? latestImagesInValues(v, `${path}.${k}`) : [],
  );
}

function chartOf(props: Props): string | undefined {
  return str(props.chart);
}

export const helmPolicies: PlatformPolicy[] = [
  resourcePolicy({
    name: 'kubernetes-helm-chart-pinned',
    description:
      'Every Helm chart the program installs (helm.v3.Release, helm.v3.Chart, helm.v4.Chart) pins an exact chart version (1.2.3, never a range or unset, no devel: true) and its values never pin an image to `latest`. A chart from a local path is exempt from the version (the repository pins it).',
    control: { framework: 'Platform Kit', id: 'supply-chain', url: 'https://helm.sh/docs/topics/charts/#the-chart-version' },
    concern: 'security',
    severity: 'medium',
    remediation: 'Set version to the exact chart version in Pulumi.<stack>.yaml (cluster.charts) and image tags in values to released versions.',
    types: HELM_TYPES,
    validate: (props, args, report) => {
      const chart = chartOf(props) ?? '(unset)';
      const version = str(props.version);
      if (!isLocalChart(chart)) {
        if (version === undefined) report(`${describe(args)} installs chart ${chart} without a version (latest at install time).`);
        else if (!EXACT_VERSION.test(version)) report(`${describe(args)} installs chart ${chart} at '${version}', which is not an exact version.`);
      }
      if (props.devel === true) report(`${describe(args)} sets devel: true, allowing pre-release charts.`);
      for (const path of latestImagesInValues(props.values)) report(`${describe(args)} pins an image to latest at ${path}.`);
    },
  }),
  resourcePolicy({
    name: 'kubernetes-helm-release-declared-namespace',
    description:
      'Helm releases install into a Namespace the program declares (createNamespace is not true). A namespace Helm creates is invisible to policy: it would get neither Pod Security admission labels nor a NetworkPolicy.',
    control: { framework: 'Platform Kit', id: 'visible-namespaces' },
    concern: 'security',
    severity: 'medium',
    remediation: 'Create a kubernetes.core.v1.Namespace (with Pod Security labels and a NetworkPolicy) and pass its name as the release namespace.',
    types: [HELM_RELEASE],
    validate: (props, args, report) => {
      if (props.createNamespace === true) {
        report(`${describe(args)} lets Helm create namespace '${str(props.namespace) ?? 'default'}'; declare it as a Namespace resource instead.`);
      }
    },
  }),
];

/** Which charts a stack installs, for the report of what policy cannot see inside. */
export function chartLabel(props: Props): string {
  const repo = str(at(props, 'repositoryOpts', 'repo')) ?? str(at(props, 'fetchOpts', 'repo'));
  return `${chartOf(props) ?? '(unset)'}@${str(props.version) ?? '(unpinned)'}${repo ? ` from ${repo}` : ''}`;
}
