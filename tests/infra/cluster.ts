/**
 * What a real `pulumi up` of the cluster needs, asserted on the captured graph of a stack:
 * create/destroy order, upgrade order, access, webhook readiness, add-ons that work once
 * deployed, node pools and the autoscaler. Each stack's test file calls `describeCluster`.
 */
import { ACCESS_POLICIES, KEDA_INGRESS, PLACEMENT, poolLabel } from '../../platform/cluster';
import type { StackConfig } from '../../platform/config';
import { renderManifests } from '../../tools/offline/manifests';
import type { CapturedResource, CapturedStack } from '../../tools/offline/types';
import { type Inputs, list, ofType, one, parsePolicy, waitsFor } from './graph';
import { validateObject } from './manifests';

const ADDON = 'aws:eks/addon:Addon';
const NODE_GROUP = 'eks:index:ManagedNodeGroup';
const RELEASE = 'kubernetes:helm.sh/v3:Release';
const ATTACHMENT = 'aws:iam/rolePolicyAttachment:RolePolicyAttachment';

const CLUSTER_COMPONENT = 'platform-kit:cluster:Cluster$';

/** Resources of a type that the cluster component owns (other components install releases too). */
function ofCluster(s: CapturedStack, type: string): CapturedResource[] {
  return ofType(s, type).filter((r) => r.urn.includes(CLUSTER_COMPONENT));
}

function childrenOf(s: CapturedStack, type: string, parent: CapturedResource): CapturedResource[] {
  return ofType(s, type).filter((r) => r.parent === parent.urn);
}

function addon(s: CapturedStack, name: string): CapturedResource {
  const found = ofType(s, ADDON).find((a) => a.inputs.addonName === name);
  if (!found) throw new Error(`no ${name} add-on`);
  return found;
}

function release(s: CapturedStack, chart: string): CapturedResource {
  const found = ofCluster(s, RELEASE).find((r) => r.inputs.chart === chart);
  if (!found) throw new Error(`no ${chart} release`);
  return found;
}

/** Every action an IRSA role's inline policy allows, by the role's logical name. */
function allowedActions(s: CapturedStack, roleName: string): string[] {
  return parsePolicy(one(s, 'aws:iam/rolePolicy:RolePolicy', `${roleName}-policy`).inputs.policy).Statement.flatMap((st) => list(st.Action));
}

export function describeCluster(get: () => CapturedStack, cfg: () => StackConfig): void {
  describe('cluster: create and destroy order', () => {
    it('creates the control plane only after its role policy is attached, and deletes it first', () => {
      const s = get();
      const role = one(s, 'aws:iam/role:Role', 'cluster-control-plane-role');
      const attachments = childrenOf(s, ATTACHMENT, role);
      expect(attachments.map((a) => a.name)).toEqual(['cluster-control-plane-role-eks']);
      const cluster = one(s, 'eks:index:Cluster');
      for (const a of attachments) expect(cluster.dependencies).toContain(a.urn);
    });

    it('creates every node group only after the node role policies are attached', () => {
      const s = get();
      const attachments = childrenOf(s, ATTACHMENT, one(s, 'aws:iam/role:Role', 'cluster-node-role'));
      expect(attachments.map((a) => a.name).sort()).toEqual(['cluster-node-role-ecr-pull', 'cluster-node-role-ssm', 'cluster-node-role-worker']);
      for (const g of ofType(s, NODE_GROUP)) for (const a of attachments) expect({ group: g.name, waits: g.dependencies.includes(a.urn) }).toEqual({ group: g.name, waits: true });
    });

    it('starts each IRSA user (add-on, controller) only after its role can act', () => {
      const s = get();
      const grants = (role: string) => s.resources.filter((r) => r.parent === one(s, 'aws:iam/role:Role', role).urn);
      const users: [CapturedResource, string][] = [
        [addon(s, 'vpc-cni'), 'cluster-vpc-cni'],
        [addon(s, 'aws-ebs-csi-driver'), 'cluster-ebs-csi'],
        [release(s, 'aws-load-balancer-controller'), 'cluster-lb-controller'],
        [release(s, 'cluster-autoscaler'), 'cluster-cluster-autoscaler'],
      ];
      for (const [user, role] of users) {
        expect(grants(role).length).toBeGreaterThan(0);
        for (const g of grants(role)) expect({ user: user.name, grant: g.name, waits: waitsFor(s, user, g) }).toEqual({ user: user.name, grant: g.name, waits: true });
      }
    });
  });

  describe('cluster: upgrades without drift', () => {
    it('pins every EKS add-on to the version in the stack file', () => {
      const s = get();
      const { addons } = cfg().cluster;
      expect(Object.fromEntries(ofType(s, ADDON).map((a) => [a.inputs.addonName, a.inputs.addonVersion]))).toEqual({
        'vpc-cni': addons.vpcCni,
        'kube-proxy': addons.kubeProxy,
        coredns: addons.coredns,
        'aws-ebs-csi-driver': addons.ebsCsiDriver,
      });
    });

    it('runs the node groups at the control plane version and states the upgrade policy', () => {
      const s = get();
      const cluster = one(s, 'eks:index:Cluster');
      expect(cluster.inputs).toMatchObject({ version: cfg().cluster.version, upgradePolicy: { supportType: cfg().cluster.upgradePolicy } });
      for (const g of ofType(s, NODE_GROUP)) expect(g.inputs.version).toBe(cfg().cluster.version);
    });

    it('orders one up: control plane, then vpc-cni and kube-proxy, then the nodes, then coredns and EBS CSI', () => {
      const s = get();
      const cluster = one(s, 'eks:index:Cluster');
      const daemonSets = [addon(s, 'vpc-cni'), addon(s, 'kube-proxy')];
      const deployments = [addon(s, 'coredns'), addon(s, 'aws-ebs-csi-driver')];
      for (const a of [...daemonSets, ...deployments]) expect(a.dependencies).toContain(cluster.urn);
      for (const g of ofType(s, NODE_GROUP)) {
        for (const a of daemonSets) expect(g.dependencies).toContain(a.urn);
        for (const a of deployments) expect(a.dependencies).toContain(g.urn);
        // No cycle: nodes never wait for what runs on them.
        for (const a of deployments) expect(waitsFor(s, g, a)).toBe(false);
      }
    });
  });

  describe('cluster: access', () => {
    it('grants the stack file\'s admins cluster-admin and its viewers read-only view, and nothing to the creator again', () => {
      const s = get();
      const { access } = cfg().cluster;
      const entries = ofType(s, 'aws:eks/accessEntry:AccessEntry');
      expect(entries.map((e) => e.inputs.principalArn).sort()).toEqual([...access.admins, ...access.viewers].sort());
      expect(entries.map((e) => e.inputs.principalArn)).not.toContain(access.deployerRoleArn);
      const policyOf = Object.fromEntries(ofType(s, 'aws:eks/accessPolicyAssociation:AccessPolicyAssociation').map((a) => [a.inputs.principalArn, a.inputs]));
      for (const arn of access.admins) expect(policyOf[arn]).toMatchObject({ policyArn: `arn:aws:eks::aws:cluster-access-policy/${ACCESS_POLICIES.admin}`, accessScope: { type: 'cluster' } });
      for (const arn of access.viewers) expect(policyOf[arn]).toMatchObject({ policyArn: `arn:aws:eks::aws:cluster-access-policy/${ACCESS_POLICIES.viewer}`, accessScope: { type: 'cluster' } });
      expect(one(s, 'eks:index:Cluster').inputs.authenticationMode).toBe('API');
    });

    it('talks to the Kubernetes API only once the access entries and the deploy path exist', () => {
      const s = get();
      const provider = one(s, 'pulumi:providers:kubernetes');
      const associations = ofType(s, 'aws:eks/accessPolicyAssociation:AccessPolicyAssociation');
      expect(associations).toHaveLength(cfg().cluster.access.admins.length + cfg().cluster.access.viewers.length);
      for (const a of associations) expect(provider.dependencies).toContain(a.urn);
      for (const r of s.resources.filter((x) => x.type.startsWith('kubernetes:'))) expect(r.provider?.startsWith(`${provider.urn}::`)).toBe(true);
    });
  });

  describe('cluster: webhooks are ready before what they admit', () => {
    it('installs the load balancer controller on running nodes with cluster DNS, and every other chart after it', () => {
      const s = get();
      const lbc = release(s, 'aws-load-balancer-controller');
      for (const g of ofType(s, NODE_GROUP)) expect(waitsFor(s, lbc, g)).toBe(true);
      for (const a of ofType(s, ADDON)) expect(waitsFor(s, lbc, a)).toBe(true);
      expect(ofCluster(s, RELEASE).filter((r) => r !== lbc).map((r) => r.inputs.chart).sort()).toEqual(['cluster-autoscaler', 'keda', 'metrics-server']);
      // The cluster's other charts and every chart of the stack's other components.
      const others = ofType(s, RELEASE).filter((r) => r !== lbc);
      for (const r of others) expect({ chart: r.inputs.chart, waitsForController: waitsFor(s, r, lbc) }).toEqual({ chart: r.inputs.chart, waitsForController: true });
    });

    it('keeps Service creation independent of the controller (its Service webhook fails closed)', () => {
      expect((release(get(), 'aws-load-balancer-controller').inputs.values as Inputs).enableServiceMutatorWebhook).toBe(false);
    });
  });

  describe('cluster: KEDA works behind its NetworkPolicies', () => {
    it('admits exactly these ports, each for its reason', () => {
      expect(KEDA_INGRESS.map((r) => [r.component, r.port, r.from, r.reason])).toEqual([
        ['operator', 9666, { component: 'metricsApiServer' }, expect.stringMatching(/gRPC metrics service: the metrics API server asks the operator/)],
        ['operator', 8080, 'prometheus', expect.stringMatching(/Prometheus scrapes the operator metrics/)],
        ['metricsApiServer', 6443, 'api-server', expect.stringMatching(/API server proxies external\.metrics\.k8s\.io to it/)],
        ['metricsApiServer', 8080, 'prometheus', expect.stringMatching(/Prometheus scrapes/)],
        ['admissionWebhooks', 9443, 'api-server', expect.stringMatching(/API server calls the validating webhook for ScaledObjects/)],
        ['admissionWebhooks', 8080, 'prometheus', expect.stringMatching(/Prometheus scrapes/)],
      ]);
    });

    it('renders a default deny plus one policy per component with those peers', () => {
      const s = get();
      const policies = Object.fromEntries(ofType(s, 'kubernetes:networking.k8s.io/v1:NetworkPolicy').map((p) => [(p.inputs.metadata as Inputs).name, p.inputs.spec as Inputs]));
      expect(policies['default-deny-ingress']).toEqual({ podSelector: {}, policyTypes: ['Ingress'] });
      const rule = (app: string, port: number) =>
        ((policies[app]?.ingress ?? []) as { from: unknown[]; ports: { port: number }[] }[]).find((i) => i.ports.some((p) => p.port === port))?.from;
      expect(rule('keda-operator', 9666)).toEqual([{ podSelector: { matchLabels: { app: 'keda-operator-metrics-apiserver' } } }]);
      expect(rule('keda-operator', 8080)).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
      expect(rule('keda-operator-metrics-apiserver', 6443)).toEqual([{ ipBlock: { cidr: cfg().network.cidrBlock } }]);
      expect(rule('keda-admission-webhooks', 9443)).toEqual([{ ipBlock: { cidr: cfg().network.cidrBlock } }]);
      // The chart serves the metrics ports the policies admit.
      expect((release(s, 'keda').inputs.values as { prometheus: unknown }).prometheus).toEqual({ operator: { enabled: true }, metricServer: { enabled: true }, webhooks: { enabled: true } });
    });
  });

  describe('cluster: the load balancer controller can do what its chart enables', () => {
    it('grants WAFv2 and Shield actions exactly when the chart turns them on, and never WAF Classic', () => {
      const s = get();
      const values = release(s, 'aws-load-balancer-controller').inputs.values as Inputs;
      const { wafv2, shield } = cfg().cluster.loadBalancerController;
      expect({ enableWaf: values.enableWaf, enableWafv2: values.enableWafv2, enableShield: values.enableShield }).toEqual({ enableWaf: false, enableWafv2: wafv2, enableShield: shield });
      const actions = allowedActions(s, 'cluster-lb-controller');
      expect(actions.filter((a) => a.startsWith('waf-regional:') || a.startsWith('waf:'))).toEqual([]);
      const needs = { wafv2: ['wafv2:GetWebACL', 'wafv2:GetWebACLForResource', 'wafv2:AssociateWebACL', 'wafv2:DisassociateWebACL'], shield: ['shield:GetSubscriptionState', 'shield:DescribeProtection', 'shield:CreateProtection', 'shield:DeleteProtection'] };
      for (const [feature, on] of [['wafv2', wafv2], ['shield', shield]] as const) {
        const granted = actions.filter((a) => a.startsWith(`${feature}:`)).sort();
        expect({ feature, granted }).toEqual({ feature, granted: on ? [...needs[feature]].sort() : [] });
      }
    });
  });

  describe('cluster: capacity follows pod demand', () => {
    it('runs the cluster autoscaler with its own IRSA role, scaling only this cluster\'s node groups', () => {
      const s = get();
      const ca = release(s, 'cluster-autoscaler');
      const values = ca.inputs.values as { autoDiscovery: Inputs; image: Inputs; rbac: { serviceAccount: { annotations: Record<string, string> } } };
      expect(values.autoDiscovery).toEqual({ clusterName: s.outputs.clusterName });
      expect(values.image).toEqual({ tag: cfg().cluster.autoscaler.imageTag });
      expect(values.rbac.serviceAccount.annotations['eks.amazonaws.com/role-arn']).toMatch(/:role\/cluster-cluster-autoscaler/);
      const statements = parsePolicy(one(s, 'aws:iam/rolePolicy:RolePolicy', 'cluster-cluster-autoscaler-policy').inputs.policy).Statement;
      const scaling = statements.find((st) => list(st.Action).includes('autoscaling:SetDesiredCapacity'));
      expect(scaling?.Condition).toEqual({ StringEquals: { [`aws:ResourceTag/k8s.io/cluster-autoscaler/${String(s.outputs.clusterName)}`]: 'owned' } });
      expect(list(scaling?.Resource)).not.toContain('*');
    });

    it('lets the autoscaler own the node count: node groups ignore desired-size changes', () => {
      for (const g of ofType(get(), NODE_GROUP)) expect(g.inputs.ignoreScalingChanges).toBe(true);
    });
  });

  describe('cluster: node pools', () => {
    it('labels each group for the pools it serves and taints a jobs-only group', () => {
      const s = get();
      for (const spec of cfg().cluster.nodeGroups) {
        const g = one(s, NODE_GROUP, `cluster-${spec.name}`);
        const labels = g.inputs.labels as Record<string, string>;
        for (const pool of ['system', 'jobs'] as const) expect(labels[poolLabel(pool)]).toBe(spec.roles.includes(pool) ? 'true' : undefined);
        const exclusive = spec.roles.length === 1 && spec.roles[0] === 'jobs';
        expect(g.inputs.taints ?? []).toEqual(exclusive ? [{ key: poolLabel('jobs'), value: 'true', effect: 'NO_SCHEDULE' }] : []);
      }
    });

    it('gives workloads one placement per pool that matches those labels and taints', () => {
      expect(PLACEMENT).toEqual({
        system: { nodeSelector: { 'node.platform-kit.io/system': 'true' }, tolerations: [] },
        jobs: { nodeSelector: { 'node.platform-kit.io/jobs': 'true' }, tolerations: [{ key: 'node.platform-kit.io/jobs', operator: 'Equal', value: 'true', effect: 'NoSchedule' }] },
      });
    });

    it('keeps the cluster add-ons on the system pool', () => {
      const s = get();
      for (const r of ofCluster(s, RELEASE)) expect({ chart: r.inputs.chart, nodeSelector: (r.inputs.values as Inputs).nodeSelector }).toEqual({ chart: r.inputs.chart, nodeSelector: PLACEMENT.system.nodeSelector });
      expect(JSON.parse(String(addon(s, 'coredns').inputs.configurationValues))).toEqual({ nodeSelector: PLACEMENT.system.nodeSelector });
      expect(JSON.parse(String(addon(s, 'aws-ebs-csi-driver').inputs.configurationValues))).toEqual({ controller: { nodeSelector: PLACEMENT.system.nodeSelector }, node: { tolerateAllTaints: true } });
    });

    it('pays for detailed EC2 monitoring only where a reader is named', () => {
      const s = get();
      for (const lt of ofType(s, 'aws:ec2/launchTemplate:LaunchTemplate')) {
        const spec = cfg().cluster.nodeGroups.find((g) => lt.name === `cluster-${g.name}-lt`);
        expect(lt.inputs.monitoring).toEqual({ enabled: spec?.detailedMonitoringReader !== undefined });
      }
    });
  });

  it('leaves every Kubernetes object of the stack valid against its schema (KEDA and prometheus-operator custom resources included)', async () => {
    const manifests = renderManifests(get());
    expect(manifests.length).toBeGreaterThan(0);
    for (const { object } of manifests) await validateObject(object);
  });
}
