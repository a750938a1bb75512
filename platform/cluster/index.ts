import * as aws from '@pulumi/aws';
import * as eks from '@pulumi/eks';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { createIrsaRole, type OidcIdentity } from '../identity/irsa';
import { awsContext } from '../shared/aws-context';
import { awsManagedPolicyArn, serviceTrustPolicy } from '../shared/iam';
import { createKmsKey } from '../shared/kms';
import { clusterEndpointOf, stableKubeconfig } from './kubeconfig';
import { loadBalancerControllerPolicy } from './lb-controller-policy';

export const CONTROL_PLANE_LOG_TYPES = ['api', 'audit', 'authenticator', 'controllerManager', 'scheduler'] as const;
export type ControlPlaneLogType = (typeof CONTROL_PLANE_LOG_TYPES)[number];

export interface NodeGroupSpec {
  /** Short name, part of every child's logical name: never rename a shipped group. */
  name: string;
  /** Instance types; all of one CPU architecture. */
  instanceTypes: string[];
  /** `ON_DEMAND` or `SPOT`. Default `ON_DEMAND`. */
  capacityType?: 'ON_DEMAND' | 'SPOT';
  /** Fewest nodes. Required. */
  minSize: number;
  /** Nodes at creation; EKS keeps it between min and max. Required. */
  desiredSize: number;
  /** Most nodes. Required, ≥ desiredSize. */
  maxSize: number;
  /** Root volume in GiB (gp3, encrypted). Default 50. */
  diskSizeGiB?: number;
  /** Kubernetes labels. Default none. */
  labels?: Record<string, string>;
}

/** Exact chart versions (never ranges: an unpinned chart changes under a rerun). All required. */
export interface HelmChartVersions {
  /** `aws-load-balancer-controller` from https://aws.github.io/eks-charts. */
  awsLoadBalancerController: string;
  /** `metrics-server` from https://kubernetes-sigs.github.io/metrics-server/. */
  metricsServer: string;
  /** `keda` from https://kedacore.github.io/charts. */
  keda: string;
}

export interface ClusterArgs {
  /** AWS region, for the kubeconfig's token command and the controller's settings. Required. */
  region: string;
  /** VPC to run in. Required. */
  vpcId: pulumi.Input<string>;
  /** Private subnets: control-plane network interfaces and every node group live here. Required. */
  privateSubnetIds: pulumi.Input<string[]>;
  /** Physical cluster name (the controller, the token command and IAM conditions use it). Default: the component name. */
  clusterName?: string;
  /** Kubernetes minor version, e.g. `1.33`. Required. */
  version: string;
  /**
   * CIDRs allowed to the public API endpoint. Empty (default) disables the public endpoint
   * entirely; the private endpoint is always on.
   */
  publicAccessCidrs?: string[];
  /** Networks outside the VPC (VPN, peered CI runners) allowed to the private endpoint on 443. Default none. */
  privateAccessCidrs?: string[];
  /** Control-plane log types. Default all five. */
  logTypes?: ControlPlaneLogType[];
  /** Days to keep control-plane logs. Default 90. */
  logRetentionDays?: number;
  /** Managed node groups, at least one. */
  nodeGroups: NodeGroupSpec[];
  /** IAM roles given cluster-admin through access entries. Default none (the creator keeps admin). */
  adminRoleArns?: string[];
  /** Refuse `DeleteCluster` until turned off. Default true. */
  deletionProtection?: boolean;
  /**
   * IMDS hop limit on node launch templates, 1 or 2. Default 1: a pod is one network hop
   * further from the instance than the node, so 1 keeps pods away from the node's IAM
   * role and every pod that needs AWS gets its own role through IRSA. Use 2 only for an
   * agent that must read instance metadata from a pod and cannot take IRSA.
   */
  imdsHopLimit?: 1 | 2;
  /** Pinned Helm chart versions of the add-ons installed with Helm. Required. */
  charts: HelmChartVersions;
  /** Escape hatch for settings this component does not expose. Default identity. */
  transform?: { cluster?: (args: eks.ClusterArgs) => eks.ClusterArgs };
}

const GRAVITON = /^[a-z]+\d+g[a-z]*\./;

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
  }
  for (const cidr of [...(args.publicAccessCidrs ?? []), ...(args.privateAccessCidrs ?? [])]) {
    if (cidr.endsWith('/0')) problems.push(`API endpoint allow-list entry ${cidr} opens the endpoint to the internet`);
  }
  if (args.imdsHopLimit !== undefined && args.imdsHopLimit !== 1 && args.imdsHopLimit !== 2) problems.push('imdsHopLimit must be 1 or 2');
  return problems;
}

/**
 * An EKS cluster (pulumi/eks) with what a platform needs around it, created as direct
 * resources so they are visible offline and to policies:
 * KMS key for secrets envelope encryption and logs, the control-plane log group, the
 * cluster and node IAM roles, an IAM OIDC provider for IRSA, launch templates that
 * require IMDSv2, managed node groups in private subnets, EKS managed add-ons (vpc-cni
 * with network policy enforcement, coredns, kube-proxy, EBS CSI, the last two with IRSA),
 * a Kubernetes provider whose kubeconfig is stable (pulumi-eks#764), and the AWS Load
 * Balancer Controller, metrics-server and KEDA as pinned Helm releases.
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
  /** Provider for Kubernetes resources in this cluster. */
  public readonly provider: k8s.Provider;
  /** The raw eks component, for the rare caller that needs it. */
  public readonly eksCluster: eks.Cluster;
  /** Everything later Kubernetes resources should wait for (node groups, add-ons). */
  public readonly ready: pulumi.Resource[];

  constructor(name: string, args: ClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super('platform-kit:cluster:Cluster', name, {}, opts);
    const problems = validateClusterArgs(args);
    if (problems.length > 0) throw new pulumi.ResourceError(`Cluster ${name}: ${problems.join('; ')}`, this);

    const clusterName = args.clusterName ?? name;
    const ctx = awsContext(this);
    // Options every direct child shares: parented here, so it inherits this component's providers.
    const own = { parent: this };

    const key = createKey();
    const logGroup = createLogGroup();
    const serviceRole = createServiceRole();
    const nodeRole = createNodeRole();
    const cluster = createCluster();
    const oidc = createOidcProvider();
    allowPrivateEndpointAccess();
    const provider = createKubernetesProvider();
    const earlyAddons = [createAddon('vpc-cni', vpcCniRole(), { enableNetworkPolicy: 'true' }), createAddon('kube-proxy')];
    const nodeGroups = args.nodeGroups.map((spec) => createNodeGroup(spec, earlyAddons));
    const lateAddons = [createAddon('coredns', undefined, undefined, nodeGroups), createAddon('aws-ebs-csi-driver', ebsCsiRole(), undefined, nodeGroups)];
    const ready: pulumi.Resource[] = [...nodeGroups, ...earlyAddons, ...lateAddons];
    createDefaultStorageClass();
    installLoadBalancerController();
    installMetricsServer();
    installKeda();

    this.clusterName = clusterName;
    this.kubeconfig = pulumi.output(provider.kubeconfig);
    this.clusterSecurityGroupId = cluster.clusterSecurityGroupId;
    this.oidcProviderArn = oidc.providerArn;
    this.oidcIssuer = oidc.issuer;
    this.nodeRoleArn = nodeRole.arn;
    this.secretsKeyArn = key.arn;
    this.provider = provider.provider;
    this.eksCluster = cluster;
    this.ready = ready;
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

    function createServiceRole(): aws.iam.Role {
      const role = new aws.iam.Role(
        `${name}-control-plane-role`,
        { description: `EKS control plane of ${clusterName}`, assumeRolePolicy: ctx.accountId.apply((a) => serviceTrustPolicy('eks', a)) },
        own,
      );
      new aws.iam.RolePolicyAttachment(`${name}-control-plane-role-eks`, { role: role.name, policyArn: awsManagedPolicyArn(ctx.partition, 'AmazonEKSClusterPolicy') }, { parent: role });
      return role;
    }

    function createNodeRole(): aws.iam.Role {
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
      for (const [short, policy] of Object.entries(policies)) {
        new aws.iam.RolePolicyAttachment(`${name}-node-role-${short}`, { role: role.name, policyArn: awsManagedPolicyArn(ctx.partition, policy) }, { parent: role });
      }
      return role;
    }

    function createCluster(): eks.Cluster {
      const publicCidrs = args.publicAccessCidrs ?? [];
      const clusterArgs: eks.ClusterArgs = {
        name: clusterName,
        version: args.version,
        vpcId: args.vpcId,
        privateSubnetIds: args.privateSubnetIds,
        nodeAssociatePublicIpAddress: false,
        endpointPrivateAccess: true,
        endpointPublicAccess: publicCidrs.length > 0,
        ...(publicCidrs.length > 0 ? { publicAccessCidrs: publicCidrs } : {}),
        enabledClusterLogTypes: args.logTypes ?? [...CONTROL_PLANE_LOG_TYPES],
        encryptionConfigKeyArn: key.arn,
        serviceRole,
        authenticationMode: 'API',
        accessEntries: Object.fromEntries(
          (args.adminRoleArns ?? []).map((arn, i) => [
            `admin-${i}`,
            { principalArn: arn, accessPolicies: { admin: { policyArn: pulumi.interpolate`arn:${ctx.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy`, accessScope: { type: 'cluster' } } } },
          ]),
        ),
        deletionProtection: args.deletionProtection ?? true,
        // Standard support only: extended support costs six times as much per cluster-hour,
        // and an upgrade that is due should be done, not deferred.
        upgradePolicy: { supportType: 'STANDARD' },
        // We own these as direct resources (below), so they are visible and configured here.
        skipDefaultNodeGroup: true,
        skipDefaultSecurityGroups: true,
        createOidcProvider: false,
        useDefaultVpcCni: true,
        corednsAddonOptions: { enabled: false },
        kubeProxyAddonOptions: { enabled: false },
        storageClasses: {},
      };
      return new eks.Cluster(`${name}-eks`, args.transform?.cluster?.(clusterArgs) ?? clusterArgs, { ...own, dependsOn: [logGroup] });
    }

    function createOidcProvider(): OidcIdentity & { providerArn: pulumi.Output<string>; issuer: pulumi.Output<string> } {
      const provider = new aws.iam.OpenIdConnectProvider(
        `${name}-oidc`,
        { url: cluster.oidcProviderUrl, clientIdLists: ['sts.amazonaws.com'] },
        own,
      );
      return { providerArn: provider.arn, issuer: cluster.oidcIssuer };
    }

    function allowPrivateEndpointAccess(): void {
      for (const cidr of args.privateAccessCidrs ?? []) {
        new aws.vpc.SecurityGroupIngressRule(
          `${name}-api-from-${cidr.replace(/[./]/g, '-')}`,
          { securityGroupId: cluster.clusterSecurityGroupId, cidrIpv4: cidr, ipProtocol: 'tcp', fromPort: 443, toPort: 443, description: `Kubernetes API from ${cidr}` },
          own,
        );
      }
    }

    function createKubernetesProvider(): { provider: k8s.Provider; kubeconfig: pulumi.Output<string> } {
      const kubeconfig = cluster.kubeconfigJson.apply((json) => stableKubeconfig({ clusterName, region: args.region, ...clusterEndpointOf(json) }));
      return { provider: new k8s.Provider(`${name}-k8s`, { kubeconfig, enableServerSideApply: true }, own), kubeconfig };
    }

    function vpcCniRole(): pulumi.Output<string> {
      return createIrsaRole(
        `${name}-vpc-cni`,
        { oidc, namespace: 'kube-system', serviceAccount: 'aws-node', description: 'VPC CNI: manages pod ENIs and addresses', managedPolicies: { cni: awsManagedPolicyArn(ctx.partition, 'AmazonEKS_CNI_Policy') } },
        own,
      ).arn;
    }

    function ebsCsiRole(): pulumi.Output<string> {
      return createIrsaRole(
        `${name}-ebs-csi`,
        { oidc, namespace: 'kube-system', serviceAccount: 'ebs-csi-controller-sa', description: 'EBS CSI controller: creates and attaches volumes', managedPolicies: { ebs: awsManagedPolicyArn(ctx.partition, 'service-role/AmazonEBSCSIDriverPolicy') } },
        own,
      ).arn;
    }

    function createAddon(addonName: string, roleArn?: pulumi.Input<string>, configuration?: Record<string, unknown>, after: pulumi.Resource[] = []): aws.eks.Addon {
      return new aws.eks.Addon(
        `${name}-${addonName}`,
        {
          clusterName,
          addonName,
          ...(roleArn ? { serviceAccountRoleArn: roleArn } : {}),
          ...(configuration ? { configurationValues: JSON.stringify(configuration) } : {}),
          // EKS installs self-managed copies of vpc-cni, coredns and kube-proxy at creation;
          // OVERWRITE adopts them, PRESERVE keeps hand-made changes out of our updates' way.
          resolveConflictsOnCreate: 'OVERWRITE',
          resolveConflictsOnUpdate: 'PRESERVE',
        },
        { ...own, dependsOn: [cluster, ...after] },
      );
    }

    function createNodeGroup(spec: NodeGroupSpec, after: pulumi.Resource[]): eks.ManagedNodeGroup {
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
          monitoring: { enabled: true },
        },
        own,
      );
      return new eks.ManagedNodeGroup(
        `${name}-${spec.name}`,
        {
          cluster,
          nodeRole,
          subnetIds: args.privateSubnetIds,
          instanceTypes: spec.instanceTypes,
          capacityType: spec.capacityType ?? 'ON_DEMAND',
          amiType: amiTypeFor(spec.instanceTypes),
          scalingConfig: { minSize: spec.minSize, desiredSize: spec.desiredSize, maxSize: spec.maxSize },
          labels: { 'platform-kit/node-group': spec.name, ...(spec.labels ?? {}) },
          launchTemplate: { id: launchTemplate.id, version: launchTemplate.latestVersion.apply((v) => String(v)) },
        },
        { ...own, dependsOn: after },
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
        { ...own, provider: provider.provider },
      );
    }

    function installLoadBalancerController(): void {
      const serviceAccount = 'aws-load-balancer-controller';
      const policy = pulumi
        .all([ctx.partition, ctx.region, ctx.accountId, pulumi.output(args.vpcId)])
        .apply(([partition, region, accountId, vpcId]) => JSON.stringify(loadBalancerControllerPolicy({ partition, region, accountId, vpcId })));
      const role = createIrsaRole(`${name}-lb-controller`, { oidc, namespace: 'kube-system', serviceAccount, description: 'AWS Load Balancer Controller', policy }, own);
      new k8s.helm.v3.Release(
        `${name}-lb-controller`,
        {
          name: 'aws-load-balancer-controller',
          chart: 'aws-load-balancer-controller',
          version: args.charts.awsLoadBalancerController,
          repositoryOpts: { repo: 'https://aws.github.io/eks-charts' },
          namespace: 'kube-system',
          cleanupOnFail: true,
          values: {
            clusterName,
            // Given explicitly so the controller never needs instance metadata (hop limit 1 denies it).
            region: args.region,
            vpcId: args.vpcId,
            replicaCount: 2,
            serviceAccount: { create: true, name: serviceAccount, annotations: { 'eks.amazonaws.com/role-arn': role.arn } },
            podDisruptionBudget: { maxUnavailable: 1 },
          },
        },
        { ...own, provider: provider.provider, dependsOn: ready },
      );
    }

    function installMetricsServer(): void {
      new k8s.helm.v3.Release(
        `${name}-metrics-server`,
        {
          name: 'metrics-server',
          chart: 'metrics-server',
          version: args.charts.metricsServer,
          repositoryOpts: { repo: 'https://kubernetes-sigs.github.io/metrics-server/' },
          namespace: 'kube-system',
          cleanupOnFail: true,
          // Two replicas and a PDB: the HPA of the api goes blind when metrics-server is down.
          values: { replicas: 2, podDisruptionBudget: { enabled: true, maxUnavailable: 1 } },
        },
        { ...own, provider: provider.provider, dependsOn: ready },
      );
    }

    function installKeda(): void {
      // KEDA scales workers on queue depth read from Redis; it calls no AWS API, so no IRSA role.
      const namespace = new k8s.core.v1.Namespace(
        `${name}-keda-namespace`,
        {
          metadata: {
            name: 'keda',
            labels: {
              // KEDA's pods meet `restricted`; enforce it so a chart change that loosens them fails loudly.
              'pod-security.kubernetes.io/enforce': 'restricted',
              'pod-security.kubernetes.io/enforce-version': 'latest',
            },
          },
        },
        { ...own, provider: provider.provider, dependsOn: ready },
      );
      new k8s.networking.v1.NetworkPolicy(
        `${name}-keda-netpol`,
        {
          metadata: { name: 'keda', namespace: namespace.metadata.name },
          spec: {
            podSelector: {},
            policyTypes: ['Ingress'],
            // Only the API server's calls in: the external-metrics API (6443) and admission webhooks (9443).
            ingress: [{ ports: [{ protocol: 'TCP', port: 6443 }, { protocol: 'TCP', port: 9443 }] }],
          },
        },
        { parent: namespace, provider: provider.provider },
      );
      new k8s.helm.v3.Release(
        `${name}-keda`,
        {
          name: 'keda',
          chart: 'keda',
          version: args.charts.keda,
          repositoryOpts: { repo: 'https://kedacore.github.io/charts' },
          namespace: namespace.metadata.name,
          cleanupOnFail: true,
          values: { operator: { replicaCount: 2 }, podDisruptionBudget: { operator: { maxUnavailable: 1 }, metricServer: { maxUnavailable: 1 } } },
        },
        { ...own, provider: provider.provider, dependsOn: ready },
      );
    }
  }
}
