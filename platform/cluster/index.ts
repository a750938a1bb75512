import * as aws from '@pulumi/aws';
import * as eks from '@pulumi/eks';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { MONITORING } from '../../services/contract';
import { createIrsaRole, type IrsaRole, type OidcIdentity } from '../identity/irsa';
import { awsContext } from '../shared/aws-context';
import { isNonPublic } from '../shared/cidr';
import { awsManagedPolicyArn, serviceTrustPolicy } from '../shared/iam';
import { createKmsKey } from '../shared/kms';
import { RESTRICTED_NAMESPACE_LABELS } from '../shared/pod-security';
import { clusterAutoscalerPolicy } from './autoscaler-policy';
import { KEDA_COMPONENTS, KEDA_NAMESPACE, type KedaComponent, kedaNetworkPolicySpecs } from './keda-network-policy';
import { clusterEndpointOf, stableKubeconfig } from './kubeconfig';
import { type LbControllerFeatures, loadBalancerControllerFeatureValues, loadBalancerControllerPolicy } from './lb-controller-policy';
import { NODE_POOLS, type NodePool, PLACEMENT, type Placement, poolLabels, poolTaints } from './placement';

export { EVERY_NODE_TOLERATIONS, JOBS_TAINT, NODE_POOLS, PLACEMENT, poolLabel, type NodePool, type Placement, type Toleration } from './placement';
export { KEDA_INGRESS, KEDA_NAMESPACE } from './keda-network-policy';

export const CONTROL_PLANE_LOG_TYPES = ['api', 'audit', 'authenticator', 'controllerManager', 'scheduler'] as const;
export type ControlPlaneLogType = (typeof CONTROL_PLANE_LOG_TYPES)[number];

/**
 * Namespace the monitoring stack (Prometheus) runs in, admitted to the add-ons' metrics
 * ports: the contract's, where the observability component puts Prometheus.
 */
export const DEFAULT_MONITORING_NAMESPACE: string = MONITORING.namespace;

/** AWS-managed EKS access policies of the two access levels. */
export const ACCESS_POLICIES = { admin: 'AmazonEKSClusterAdminPolicy', viewer: 'AmazonEKSViewPolicy' } as const;

export interface NodeGroupSpec {
  /** Short name, part of every child's logical name: never rename a shipped group. */
  name: string;
  /** Pools the group serves (`system`, `jobs` or both); a jobs-only group is tainted. Required. */
  roles: NodePool[];
  /** Instance types; all of one CPU architecture. */
  instanceTypes: string[];
  /** `ON_DEMAND` or `SPOT`. Default `ON_DEMAND`. */
  capacityType?: 'ON_DEMAND' | 'SPOT';
  /** Fewest nodes. Required. */
  minSize: number;
  /** Nodes at creation; afterwards the cluster autoscaler owns the count (changes are ignored). Required. */
  desiredSize: number;
  /** Most nodes. Required, ≥ desiredSize. */
  maxSize: number;
  /** Root volume in GiB (gp3, encrypted). Default 50. */
  diskSizeGiB?: number;
  /** Extra Kubernetes labels. Default none. */
  labels?: Record<string, string>;
  /** What reads the nodes' 1-minute EC2 metrics; setting it turns detailed monitoring on. Default unset (off). */
  detailedMonitoringReader?: string;
}

/** Exact chart versions (never ranges: an unpinned chart changes under a rerun). All required. */
export interface HelmChartVersions {
  /** `aws-load-balancer-controller` from https://aws.github.io/eks-charts. */
  awsLoadBalancerController: string;
  /** `metrics-server` from https://kubernetes-sigs.github.io/metrics-server/. */
  metricsServer: string;
  /** `keda` from https://kedacore.github.io/charts. */
  keda: string;
  /** `cluster-autoscaler` from https://kubernetes.github.io/autoscaler. */
  clusterAutoscaler: string;
}

/** Exact EKS managed add-on versions (`aws eks describe-addon-versions`). All required. */
export interface AddonVersions {
  vpcCni: string;
  /** Of the cluster's minor version. */
  kubeProxy: string;
  coredns: string;
  ebsCsiDriver: string;
}

export interface ClusterArgs {
  /** AWS region, for the kubeconfig's token command and the controllers' settings. Required. */
  region: string;
  /** VPC to run in. Required. */
  vpcId: pulumi.Input<string>;
  /** The VPC's CIDR: where the control plane's calls into pods (webhooks, metrics APIs) come from. Required. */
  vpcCidrBlock: string;
  /** Private subnets: control-plane network interfaces and every node group live here. Required. */
  privateSubnetIds: pulumi.Input<string[]>;
  /** Physical cluster name (the controllers, the token command and IAM conditions use it). Default: the component name. */
  clusterName?: string;
  /** Kubernetes minor version, e.g. `1.33`; node groups follow it. Required. */
  version: string;
  /** Support tier after standard support ends: `STANDARD` (upgrade forced) or `EXTENDED` (billed extra). Default `STANDARD`. */
  upgradePolicy?: 'STANDARD' | 'EXTENDED';
  /**
   * How the machine running `pulumi up` reaches the Kubernetes API this program installs
   * add-ons through. `private`: private endpoint only, `deployerCidrs` admitted on 443 by
   * the cluster security group (they must be routed to the VPC: see `apiReachableAfter`).
   * `restricted`: the public endpoint too, open to `deployerCidrs` only (public addresses).
   * Required.
   */
  endpointAccess: { mode: 'private' | 'restricted'; deployerCidrs: string[] };
  /** What must exist before `deployerCidrs` can reach the VPC (transit gateway routes); Kubernetes resources wait for it. Default none. */
  apiReachableAfter?: pulumi.Resource[];
  /**
   * EKS access entries. `admins` get AmazonEKSClusterAdminPolicy, `viewers` AmazonEKSViewPolicy,
   * cluster-wide. The creator (`deployerRoleArn`) is admin through EKS's creator bootstrap
   * and must not be listed again. Required, both lists non-empty.
   */
  access: { deployerRoleArn?: string; admins: string[]; viewers: string[] };
  /** Control-plane log types. Default all five. */
  logTypes?: ControlPlaneLogType[];
  /** Days to keep control-plane logs. Default 90. */
  logRetentionDays?: number;
  /** Managed node groups, at least one; together they serve both pools. */
  nodeGroups: NodeGroupSpec[];
  /** Refuse `DeleteCluster` until turned off. Default true. */
  deletionProtection?: boolean;
  /**
   * IMDS hop limit on node launch templates, 1 or 2. Default 1: a pod is one network hop
   * further from the instance than the node, so 1 keeps pods away from the node's IAM
   * role and every pod that needs AWS gets its own role through IRSA. Use 2 only for an
   * agent that must read instance metadata from a pod and cannot take IRSA.
   */
  imdsHopLimit?: 1 | 2;
  /** Pinned EKS managed add-on versions. Required. */
  addons: AddonVersions;
  /** Pinned Helm chart versions of the add-ons installed with Helm. Required. */
  charts: HelmChartVersions;
  /** Cluster Autoscaler image tag, of the cluster's minor version (e.g. `v1.33.1`). Required. */
  autoscalerImageTag: string;
  /** AWS Load Balancer Controller integrations (chart flags and IAM move together). Default both off. */
  loadBalancerController?: Partial<LbControllerFeatures>;
  /** Namespace of the monitoring stack, admitted to the add-ons' metrics ports. Default `monitoring` (the contract's `MONITORING.namespace`). */
  monitoringNamespace?: string;
  /** Escape hatch for settings this component does not expose. Default identity. */
  transform?: { cluster?: (args: eks.ClusterArgs) => eks.ClusterArgs };
}

const GRAVITON = /^[a-z]+\d+g[a-z]*\./;
const ADDON_VERSION = /^v\d+\.\d+\.\d+-eksbuild\.\d+$/;

/** `AL2023_ARM_64_STANDARD` for Graviton types, `AL2023_x86_64_STANDARD` otherwise. */
export function amiTypeFor(instanceTypes: string[]): string {
  return instanceTypes.every((t) => GRAVITON.test(t)) ? 'AL2023_ARM_64_STANDARD' : 'AL2023_x86_64_STANDARD';
}

/** Problems with the args, empty when they are usable. Pure, so tests can call it. */
export function validateClusterArgs(args: ClusterArgs): string[] {
  const problems: string[] = [];
  if (!/^1\.\d{2}$/.test(args.version)) problems.push(`version ${args.version} must be a Kubernetes minor version such as 1.33`);
  if (args.nodeGroups.length === 0) problems.push('nodeGroups must define at least one group');
  const seen = new Set<string>();
  for (const g of args.nodeGroups) {
    if (seen.has(g.name)) problems.push(`node group ${g.name} is defined twice`);
    seen.add(g.name);
    if (!(g.minSize <= g.desiredSize && g.desiredSize <= g.maxSize)) problems.push(`node group ${g.name} must satisfy minSize ≤ desiredSize ≤ maxSize`);
    const arm = g.instanceTypes.filter((t) => GRAVITON.test(t));
    if (arm.length > 0 && arm.length < g.instanceTypes.length) {
      problems.push(`node group ${g.name} mixes Graviton and x86 instance types (${g.instanceTypes.join(', ')}); one AMI cannot serve both`);
    }
    if (g.roles.length === 0) problems.push(`node group ${g.name} serves no pool`);
  }
  for (const pool of NODE_POOLS) {
    if (args.nodeGroups.length > 0 && !args.nodeGroups.some((g) => g.roles.includes(pool))) problems.push(`no node group serves the ${pool} pool`);
  }
  const { mode, deployerCidrs } = args.endpointAccess;
  if (deployerCidrs.length === 0) problems.push('endpointAccess.deployerCidrs must list where `pulumi up` runs from');
  for (const cidr of deployerCidrs) {
    if (cidr.endsWith('/0')) problems.push(`API endpoint allow-list entry ${cidr} opens the endpoint to the internet`);
    else if (mode === 'restricted' && isNonPublic(cidr)) problems.push(`deployer CIDR ${cidr} is private; a public endpoint never sees it`);
  }
  if (args.access.admins.length === 0) problems.push('access.admins must list at least one role');
  if (args.access.viewers.length === 0) problems.push('access.viewers must list at least one role');
  const principals = [...args.access.admins, ...args.access.viewers, ...(args.access.deployerRoleArn ? [args.access.deployerRoleArn] : [])];
  if (new Set(principals).size !== principals.length) problems.push('access lists a role twice (or the deployer again); EKS allows one access entry per role');
  for (const [addon, version] of Object.entries(args.addons)) {
    if (!ADDON_VERSION.test(version)) problems.push(`addons.${addon} ${version} is not an exact EKS add-on version`);
  }
  if (!args.addons.kubeProxy.startsWith(`v${args.version}.`)) problems.push(`addons.kubeProxy ${args.addons.kubeProxy} is not a build of Kubernetes ${args.version}`);
  if (!args.autoscalerImageTag.startsWith(`v${args.version}.`)) problems.push(`autoscalerImageTag ${args.autoscalerImageTag} is not a release for Kubernetes ${args.version}`);
  if (args.imdsHopLimit !== undefined && args.imdsHopLimit !== 1 && args.imdsHopLimit !== 2) problems.push('imdsHopLimit must be 1 or 2');
  return problems;
}

/** A stable logical-name suffix for an IAM role ARN: its name, so reordering a list replaces nothing. */
function roleKey(arn: string): string {
  return (arn.split('/').pop() ?? arn).toLowerCase().replace(/[^a-z0-9-]/g, '-');
}

/**
 * An EKS cluster (pulumi/eks) with what a platform needs around it, created as direct
 * resources so they are visible offline and to policies: KMS key for secrets envelope
 * encryption and logs, the control-plane log group, the cluster and node IAM roles, an IAM
 * OIDC provider for IRSA, EKS access entries, IMDSv2 launch templates, managed node groups
 * per pool, pinned EKS managed add-ons (vpc-cni with network policy enforcement, coredns,
 * kube-proxy, EBS CSI), a Kubernetes provider whose kubeconfig is stable (pulumi-eks#764),
 * and pinned Helm releases of the AWS Load Balancer Controller, metrics-server, KEDA and
 * the Cluster Autoscaler.
 *
 * Order, on create, on a version bump and on destroy alike (dependencies are the same
 * graph): IAM policy attachments → control plane → vpc-cni, kube-proxy → node groups →
 * coredns, EBS CSI → the load balancer controller → the other Helm releases. A bump of
 * `version` in one `up` upgrades the control plane first (nothing may be newer than it),
 * then the node DaemonSets, then rolls the nodes, then the Deployment add-ons.
 *
 * Readiness for dependents: `ready` is the single list a Kubernetes dependent passes as
 * `dependsOn`. It holds the node groups, every EKS add-on, the access entries and the
 * deploy path, and every Helm release, among them the ones whose admission webhooks and
 * CRDs admit the dependents' objects: the AWS Load Balancer Controller (Ingress, Service,
 * TargetGroupBinding) and KEDA (ScaledObject, ScaledJob, TriggerAuthentication). On
 * destroy the same edges remove Ingresses before the controller that deletes their ALBs.
 *
 * Placement: `placement.system` and `placement.jobs` (see `./placement`) are what a pod
 * spec merges to run in a pool; the jobs pool is tainted where it has its own nodes.
 */
export class Cluster extends pulumi.ComponentResource {
  public readonly clusterName: string;
  /** Stable kubeconfig (JSON, no credentials: tokens come from `aws eks get-token`). */
  public readonly kubeconfig: pulumi.Output<string>;
  /** Security group EKS attaches to the control plane, every managed node and (without security groups for pods) every pod. */
  public readonly clusterSecurityGroupId: pulumi.Output<string>;
  public readonly oidcProviderArn: pulumi.Output<string>;
  /** OIDC issuer without `https://`. */
  public readonly oidcIssuer: pulumi.Output<string>;
  public readonly nodeRoleArn: pulumi.Output<string>;
  public readonly secretsKeyArn: pulumi.Output<string>;
  /** Provider for Kubernetes resources in this cluster (it waits for the access entries and the deploy path). */
  public readonly provider: k8s.Provider;
  /** The raw eks component, for the rare caller that needs it. */
  public readonly eksCluster: eks.Cluster;
  /**
   * Everything a Kubernetes dependent must wait for: node groups, EKS add-ons, access
   * entries, and the Helm releases (LB controller and KEDA webhooks and CRDs among them).
   * Pass it as `dependsOn`.
   */
  public readonly ready: pulumi.Resource[];
  /** Node selector and tolerations per pool (the same values as `PLACEMENT`). */
  public readonly placement: Readonly<Record<NodePool, Placement>> = PLACEMENT;
  /** Namespace whose pods may scrape the add-ons' metrics ports. */
  public readonly monitoringNamespace: string;

  constructor(name: string, args: ClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super('platform-kit:cluster:Cluster', name, {}, opts);
    const problems = validateClusterArgs(args);
    if (problems.length > 0) throw new pulumi.ResourceError(`Cluster ${name}: ${problems.join('; ')}`, this);

    const clusterName = args.clusterName ?? name;
    const monitoringNamespace = args.monitoringNamespace ?? DEFAULT_MONITORING_NAMESPACE;
    const features: LbControllerFeatures = { wafv2: args.loadBalancerController?.wafv2 ?? false, shield: args.loadBalancerController?.shield ?? false };
    const ctx = awsContext(this);
    // Options every direct child shares: parented here, so it inherits this component's providers.
    const own = { parent: this };

    const key = createKey();
    const logGroup = createLogGroup();
    const serviceRole = createServiceRole();
    const nodeRole = createNodeRole();
    const cluster = createCluster();
    const oidc = createOidcProvider();
    const access = createAccessEntries();
    const deployPath = allowDeployersToPrivateEndpoint();
    const provider = createKubernetesProvider();
    const nodeAddons = [createAddon('vpc-cni', args.addons.vpcCni, vpcCniRole(), { enableNetworkPolicy: 'true' }), createAddon('kube-proxy', args.addons.kubeProxy)];
    const nodeGroups = args.nodeGroups.map((spec) => createNodeGroup(spec));
    const podAddons = [
      createAddon('coredns', args.addons.coredns, undefined, { nodeSelector: PLACEMENT.system.nodeSelector }, nodeGroups),
      createAddon(
        'aws-ebs-csi-driver',
        args.addons.ebsCsiDriver,
        ebsCsiRole(),
        // The node plugin belongs on every node, the jobs pool's included.
        { controller: { nodeSelector: PLACEMENT.system.nodeSelector }, node: { tolerateAllTaints: true } },
        nodeGroups,
      ),
    ];
    // The cluster can run pods and the deployer can reach and operate it.
    const base: pulumi.Resource[] = [...nodeGroups, ...nodeAddons, ...podAddons, ...access, ...deployPath];
    createDefaultStorageClass();
    const lbController = installLoadBalancerController();
    // Every later object waits for the controller's webhooks (Services, Ingresses, TargetGroupBindings).
    const admitted = [...base, lbController];
    const releases = [installMetricsServer(), installKeda(), installClusterAutoscaler()];

    this.clusterName = clusterName;
    this.kubeconfig = pulumi.output(provider.kubeconfig);
    this.clusterSecurityGroupId = cluster.clusterSecurityGroupId;
    this.oidcProviderArn = oidc.providerArn;
    this.oidcIssuer = oidc.issuer;
    this.nodeRoleArn = nodeRole.role.arn;
    this.secretsKeyArn = key.arn;
    this.provider = provider.provider;
    this.eksCluster = cluster;
    this.ready = [...admitted, ...releases];
    this.monitoringNamespace = monitoringNamespace;
    this.registerOutputs({
      clusterName,
      clusterSecurityGroupId: this.clusterSecurityGroupId,
      oidcProviderArn: this.oidcProviderArn,
      oidcIssuer: this.oidcIssuer,
      nodeRoleArn: this.nodeRoleArn,
    });

    function createKey(): aws.kms.Key {
      return createKmsKey(`${name}`, { description: `EKS ${clusterName}: secrets envelope encryption and control-plane logs`, ctx, servicePrincipals: ['logs'] }, own).key;
    }

    function createLogGroup(): aws.cloudwatch.LogGroup {
      // EKS writes to this exact name; creating it first lets us set retention and the key
      // (EKS would otherwise create it unencrypted and keep logs forever).
      return new aws.cloudwatch.LogGroup(
        `${name}-control-plane-logs`,
        { name: `/aws/eks/${clusterName}/cluster`, retentionInDays: args.logRetentionDays ?? 90, kmsKeyId: key.arn },
        own,
      );
    }

    function createServiceRole(): { role: aws.iam.Role; attachments: pulumi.Resource[] } {
      const role = new aws.iam.Role(
        `${name}-control-plane-role`,
        { description: `EKS control plane of ${clusterName}`, assumeRolePolicy: ctx.accountId.apply((a) => serviceTrustPolicy('eks', a)) },
        own,
      );
      const attachment = new aws.iam.RolePolicyAttachment(
        `${name}-control-plane-role-eks`,
        { role: role.name, policyArn: awsManagedPolicyArn(ctx.partition, 'AmazonEKSClusterPolicy') },
        { parent: role },
      );
      return { role, attachments: [attachment] };
    }

    function createNodeRole(): { role: aws.iam.Role; attachments: pulumi.Resource[] } {
      const role = new aws.iam.Role(
        `${name}-node-role`,
        { description: `Managed nodes of ${clusterName}`, assumeRolePolicy: ctx.accountId.apply((a) => serviceTrustPolicy('ec2', a)) },
        own,
      );
      // The CNI policy is deliberately absent: vpc-cni gets its own IRSA role, so pods never inherit ENI rights.
      const policies: Record<string, string> = {
        worker: 'AmazonEKSWorkerNodePolicy',
        'ecr-pull': 'AmazonEC2ContainerRegistryPullOnly',
        // Break-glass shell through Session Manager instead of SSH keys and open port 22.
        ssm: 'AmazonSSMManagedInstanceCore',
      };
      const attachments = Object.entries(policies).map(
        ([short, policy]) =>
          new aws.iam.RolePolicyAttachment(`${name}-node-role-${short}`, { role: role.name, policyArn: awsManagedPolicyArn(ctx.partition, policy) }, { parent: role }),
      );
      return { role, attachments };
    }

    function createCluster(): eks.Cluster {
      const restricted = args.endpointAccess.mode === 'restricted';
      const clusterArgs: eks.ClusterArgs = {
        name: clusterName,
        version: args.version,
        vpcId: args.vpcId,
        privateSubnetIds: args.privateSubnetIds,
        nodeAssociatePublicIpAddress: false,
        endpointPrivateAccess: true,
        endpointPublicAccess: restricted,
        ...(restricted ? { publicAccessCidrs: args.endpointAccess.deployerCidrs } : {}),
        enabledClusterLogTypes: args.logTypes ?? [...CONTROL_PLANE_LOG_TYPES],
        encryptionConfigKeyArn: key.arn,
        serviceRole: serviceRole.role,
        // Access entries only (no aws-auth ConfigMap); the entries are direct resources below.
        authenticationMode: 'API',
        deletionProtection: args.deletionProtection ?? true,
        // Stated, not defaulted: with STANDARD, EKS upgrades a cluster whose version leaves
        // standard support; EXTENDED keeps it, at six times the price per cluster-hour.
        upgradePolicy: { supportType: args.upgradePolicy ?? 'STANDARD' },
        // We own these as direct resources (below), so they are visible and configured here.
        skipDefaultNodeGroup: true,
        skipDefaultSecurityGroups: true,
        createOidcProvider: false,
        useDefaultVpcCni: true,
        corednsAddonOptions: { enabled: false },
        kubeProxyAddonOptions: { enabled: false },
        storageClasses: {},
      };
      // The role's policy must be attached before EKS assumes it, and stay until the cluster is gone.
      return new eks.Cluster(`${name}-eks`, args.transform?.cluster?.(clusterArgs) ?? clusterArgs, { ...own, dependsOn: [logGroup, ...serviceRole.attachments] });
    }

    function createOidcProvider(): OidcIdentity & { providerArn: pulumi.Output<string>; issuer: pulumi.Output<string> } {
      const provider = new aws.iam.OpenIdConnectProvider(
        `${name}-oidc`,
        { url: cluster.oidcProviderUrl, clientIdLists: ['sts.amazonaws.com'] },
        own,
      );
      return { providerArn: provider.arn, issuer: cluster.oidcIssuer };
    }

    function createAccessEntries(): pulumi.Resource[] {
      const levels = [
        ['admin', args.access.admins],
        ['viewer', args.access.viewers],
      ] as const;
      return levels.flatMap(([level, arns]) =>
        arns.map((principalArn) => {
          const entry = new aws.eks.AccessEntry(`${name}-${level}-${roleKey(principalArn)}`, { clusterName, principalArn, type: 'STANDARD' }, { ...own, dependsOn: [cluster] });
          return new aws.eks.AccessPolicyAssociation(
            `${name}-${level}-${roleKey(principalArn)}-policy`,
            {
              clusterName,
              principalArn,
              policyArn: pulumi.interpolate`arn:${ctx.partition}:eks::aws:cluster-access-policy/${ACCESS_POLICIES[level]}`,
              accessScope: { type: 'cluster' },
            },
            { parent: entry, dependsOn: [entry] },
          );
        }),
      );
    }

    function allowDeployersToPrivateEndpoint(): pulumi.Resource[] {
      if (args.endpointAccess.mode !== 'private') return [...(args.apiReachableAfter ?? [])];
      const rules = args.endpointAccess.deployerCidrs.map(
        (cidr) =>
          new aws.vpc.SecurityGroupIngressRule(
            `${name}-api-from-${cidr.replace(/[./]/g, '-')}`,
            { securityGroupId: cluster.clusterSecurityGroupId, cidrIpv4: cidr, ipProtocol: 'tcp', fromPort: 443, toPort: 443, description: `Kubernetes API from ${cidr}` },
            own,
          ),
      );
      return [...rules, ...(args.apiReachableAfter ?? [])];
    }

    function createKubernetesProvider(): { provider: k8s.Provider; kubeconfig: pulumi.Output<string> } {
      const kubeconfig = cluster.kubeconfigJson.apply((json) => stableKubeconfig({ clusterName, region: args.region, ...clusterEndpointOf(json) }));
      // Nothing goes through it before the operators can log in and the deployer can reach the API.
      return { provider: new k8s.Provider(`${name}-k8s`, { kubeconfig, enableServerSideApply: true }, { ...own, dependsOn: [...access, ...deployPath] }), kubeconfig };
    }

    function irsa(role: string, namespace: string, serviceAccount: string, description: string, grants: { policy?: pulumi.Input<string>; managedPolicies?: Record<string, pulumi.Input<string>> }): IrsaRole {
      return createIrsaRole(`${name}-${role}`, { oidc, namespace, serviceAccount, description, ...grants }, own);
    }

    function vpcCniRole(): IrsaRole {
      return irsa('vpc-cni', 'kube-system', 'aws-node', 'VPC CNI: manages pod ENIs and addresses', { managedPolicies: { cni: awsManagedPolicyArn(ctx.partition, 'AmazonEKS_CNI_Policy') } });
    }

    function ebsCsiRole(): IrsaRole {
      return irsa('ebs-csi', 'kube-system', 'ebs-csi-controller-sa', 'EBS CSI controller: creates and attaches volumes', {
        managedPolicies: { ebs: awsManagedPolicyArn(ctx.partition, 'service-role/AmazonEBSCSIDriverPolicy') },
      });
    }

    function createAddon(addonName: string, addonVersion: string, role?: IrsaRole, configuration?: Record<string, unknown>, after: pulumi.Resource[] = []): aws.eks.Addon {
      return new aws.eks.Addon(
        `${name}-${addonName}`,
        {
          clusterName,
          addonName,
          addonVersion,
          ...(role ? { serviceAccountRoleArn: role.arn } : {}),
          ...(configuration ? { configurationValues: JSON.stringify(configuration) } : {}),
          // EKS installs self-managed copies of vpc-cni, coredns and kube-proxy at creation;
          // OVERWRITE adopts them, PRESERVE keeps hand-made changes out of our updates' way.
          resolveConflictsOnCreate: 'OVERWRITE',
          resolveConflictsOnUpdate: 'PRESERVE',
        },
        // After the control plane (an add-on version is checked against the cluster's) and after its role can act.
        { ...own, dependsOn: [cluster, ...(role?.grants ?? []), ...after] },
      );
    }

    function createNodeGroup(spec: NodeGroupSpec): eks.ManagedNodeGroup {
      const reader = spec.detailedMonitoringReader;
      const launchTemplate = new aws.ec2.LaunchTemplate(
        `${name}-${spec.name}-lt`,
        {
          description: `Nodes of ${clusterName}/${spec.name}: IMDSv2 only, encrypted gp3 root`,
          updateDefaultVersion: true,
          metadataOptions: {
            httpEndpoint: 'enabled',
            httpTokens: 'required',
            httpPutResponseHopLimit: args.imdsHopLimit ?? 1,
            instanceMetadataTags: 'disabled',
          },
          blockDeviceMappings: [
            { deviceName: '/dev/xvda', ebs: { volumeSize: spec.diskSizeGiB ?? 50, volumeType: 'gp3', encrypted: 'true', deleteOnTermination: 'true' } },
          ],
          // 1-minute CloudWatch metrics cost per instance; Prometheus scrapes the nodes already.
          monitoring: { enabled: reader !== undefined },
          ...(reader !== undefined ? { tags: { 'platform-kit.io/detailed-monitoring-reader': reader } } : {}),
        },
        own,
      );
      return new eks.ManagedNodeGroup(
        `${name}-${spec.name}`,
        {
          cluster,
          nodeRole: nodeRole.role,
          subnetIds: args.privateSubnetIds,
          // Follows the control plane: a bump of `version` rolls the nodes after the control plane is upgraded.
          version: args.version,
          instanceTypes: spec.instanceTypes,
          capacityType: spec.capacityType ?? 'ON_DEMAND',
          amiType: amiTypeFor(spec.instanceTypes),
          scalingConfig: { minSize: spec.minSize, desiredSize: spec.desiredSize, maxSize: spec.maxSize },
          // The cluster autoscaler owns the node count after creation; `up` must not undo its work.
          ignoreScalingChanges: true,
          labels: { 'platform-kit/node-group': spec.name, ...(spec.labels ?? {}), ...poolLabels(spec.roles) },
          taints: poolTaints(spec.roles).map((t) => ({ ...t })),
          launchTemplate: { id: launchTemplate.id, version: launchTemplate.latestVersion.apply((v) => String(v)) },
        },
        // Nodes join only with their role's policies attached and the node DaemonSets (CNI, kube-proxy) in place.
        { ...own, dependsOn: [...nodeRole.attachments, ...nodeAddons] },
      );
    }

    /** Options of a Kubernetes object: this cluster's provider, after `after`. */
    function kube(after: pulumi.Resource[]): pulumi.CustomResourceOptions {
      return { ...own, provider: provider.provider, dependsOn: after };
    }

    /** A pinned chart as a Helm release named like the chart, its pods on the system pool. */
    function installChart(role: string, chart: { name: string; version: string; repo: string; namespace: pulumi.Input<string> }, values: Record<string, unknown>, after: pulumi.Resource[]): k8s.helm.v3.Release {
      return new k8s.helm.v3.Release(
        `${name}-${role}`,
        {
          name: chart.name,
          chart: chart.name,
          version: chart.version,
          repositoryOpts: { repo: chart.repo },
          namespace: chart.namespace,
          cleanupOnFail: true,
          values: { ...values, ...PLACEMENT.system },
        },
        kube(after),
      );
    }

    function createDefaultStorageClass(): void {
      new k8s.storage.v1.StorageClass(
        `${name}-gp3-storage-class`,
        {
          metadata: { name: 'gp3', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
          provisioner: 'ebs.csi.aws.com',
          parameters: { type: 'gp3', encrypted: 'true' },
          volumeBindingMode: 'WaitForFirstConsumer',
          reclaimPolicy: 'Delete',
          allowVolumeExpansion: true,
        },
        kube(base),
      );
    }

    function installLoadBalancerController(): k8s.helm.v3.Release {
      const serviceAccount = 'aws-load-balancer-controller';
      const policy = pulumi
        .all([ctx.partition, ctx.region, ctx.accountId, pulumi.output(args.vpcId)])
        .apply(([partition, region, accountId, vpcId]) => JSON.stringify(loadBalancerControllerPolicy({ partition, region, accountId, vpcId }, features)));
      const role = irsa('lb-controller', 'kube-system', serviceAccount, 'AWS Load Balancer Controller', { policy });
      return installChart(
        'lb-controller',
        { name: 'aws-load-balancer-controller', version: args.charts.awsLoadBalancerController, repo: 'https://aws.github.io/eks-charts', namespace: 'kube-system' },
        {
          clusterName,
          // Given explicitly so the controller never needs instance metadata (hop limit 1 denies it).
          region: args.region,
          vpcId: args.vpcId,
          replicaCount: 2,
          serviceAccount: { create: true, name: serviceAccount, annotations: { 'eks.amazonaws.com/role-arn': role.arn } },
          podDisruptionBudget: { maxUnavailable: 1 },
          // WAF/Shield flags and the IAM policy come from one value (see lb-controller-policy.ts).
          ...loadBalancerControllerFeatureValues(features),
          // Its Service webhook fails every Service create cluster-wide while the controller
          // is down; it only defaults LoadBalancer Services to NLBs, which this platform
          // does not use (traffic enters through the ALB Ingress).
          enableServiceMutatorWebhook: false,
        },
        [...base, ...role.grants],
      );
    }

    function installMetricsServer(): k8s.helm.v3.Release {
      return installChart(
        'metrics-server',
        { name: 'metrics-server', version: args.charts.metricsServer, repo: 'https://kubernetes-sigs.github.io/metrics-server/', namespace: 'kube-system' },
        // Two replicas and a PDB: the HPA of the api goes blind when metrics-server is down.
        { replicas: 2, podDisruptionBudget: { enabled: true, maxUnavailable: 1 } },
        admitted,
      );
    }

    function installKeda(): k8s.helm.v3.Release {
      // KEDA scales workers on the job backlog read from PostgreSQL; it calls no AWS API, so no IRSA role.
      const namespace = new k8s.core.v1.Namespace(
        `${name}-keda-namespace`,
        {
          metadata: {
            name: KEDA_NAMESPACE,
            // KEDA's pods meet `restricted`; enforce it so a chart change that loosens them fails loudly.
            labels: { ...RESTRICTED_NAMESPACE_LABELS },
          },
        },
        kube(base),
      );
      const specs = kedaNetworkPolicySpecs({ monitoringNamespace, vpcCidrBlock: args.vpcCidrBlock });
      new k8s.networking.v1.NetworkPolicy(
        `${name}-keda-netpol`,
        // Isolates every pod of the namespace; the per-component policies below are the only way in.
        { metadata: { name: 'default-deny-ingress', namespace: namespace.metadata.name }, spec: { podSelector: {}, policyTypes: ['Ingress'] } },
        { parent: namespace, provider: provider.provider },
      );
      for (const component of Object.keys(KEDA_COMPONENTS) as KedaComponent[]) {
        new k8s.networking.v1.NetworkPolicy(
          `${name}-keda-netpol-${KEDA_COMPONENTS[component]}`,
          { metadata: { name: KEDA_COMPONENTS[component], namespace: namespace.metadata.name }, spec: specs[component] },
          { parent: namespace, provider: provider.provider },
        );
      }
      return installChart(
        'keda',
        { name: 'keda', version: args.charts.keda, repo: 'https://kedacore.github.io/charts', namespace: namespace.metadata.name },
        {
          operator: { replicaCount: 2 },
          podDisruptionBudget: { operator: { maxUnavailable: 1 }, metricServer: { maxUnavailable: 1 } },
          // Serve Prometheus metrics on 8080 (admitted from the monitoring namespace above).
          prometheus: { operator: { enabled: true }, metricServer: { enabled: true }, webhooks: { enabled: true } },
        },
        admitted,
      );
    }

    function installClusterAutoscaler(): k8s.helm.v3.Release {
      const serviceAccount = 'cluster-autoscaler';
      const policy = pulumi
        .all([ctx.partition, ctx.region, ctx.accountId])
        .apply(([partition, region, accountId]) => JSON.stringify(clusterAutoscalerPolicy({ partition, region, accountId, clusterName })));
      const role = irsa('cluster-autoscaler', 'kube-system', serviceAccount, 'Cluster Autoscaler: sizes the managed node groups', { policy });
      return installChart(
        'cluster-autoscaler',
        { name: 'cluster-autoscaler', version: args.charts.clusterAutoscaler, repo: 'https://kubernetes.github.io/autoscaler', namespace: 'kube-system' },
        {
          cloudProvider: 'aws',
          awsRegion: args.region,
          // Finds every managed node group of this cluster by the tags EKS puts on its Auto Scaling group.
          autoDiscovery: { clusterName },
          image: { tag: args.autoscalerImageTag },
          rbac: { serviceAccount: { create: true, name: serviceAccount, annotations: { 'eks.amazonaws.com/role-arn': role.arn } } },
          replicaCount: 2,
          podDisruptionBudget: { maxUnavailable: 1 },
          extraArgs: {
            'balance-similar-node-groups': true,
            expander: 'least-waste',
            // Job workers write scratch files to emptyDir; their PDBs, not this flag, protect them.
            'skip-nodes-with-local-storage': false,
            'skip-nodes-with-system-pods': false,
          },
        },
        [...admitted, ...role.grants],
      );
    }
  }
}
