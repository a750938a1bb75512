/**
 * A kubeconfig that only changes when the cluster does.
 *
 * pulumi-eks#764: Kubernetes resources were replaced on every `up` because the provider's
 * kubeconfig changed between runs (tokens, profiles or env baked into it), and a changed
 * kubeconfig on a first-class Kubernetes provider reads as "another cluster". This one
 * holds no credential at all: the server, the CA and an exec stanza that asks
 * `aws eks get-token` for a fresh token at each use. Its inputs are the cluster's name,
 * region, endpoint and CA, so it is byte-for-byte stable from run to run, whoever runs it.
 */
export interface KubeconfigArgs {
  clusterName: string;
  region: string;
  server: string;
  certificateAuthorityData: string;
}

export function stableKubeconfig(args: KubeconfigArgs): string {
  const context = args.clusterName;
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: context, cluster: { server: args.server, 'certificate-authority-data': args.certificateAuthorityData } }],
    contexts: [{ name: context, context: { cluster: context, user: context } }],
    'current-context': context,
    users: [
      {
        name: context,
        user: {
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1beta1',
            command: 'aws',
            args: ['eks', 'get-token', '--cluster-name', args.clusterName, '--region', args.region, '--output', 'json'],
            interactiveMode: 'Never',
          },
        },
      },
    ],
  });
}

/** Server and CA from the kubeconfig the eks component emits (the rest of it is discarded on purpose). */
export function clusterEndpointOf(kubeconfigJson: string): { server: string; certificateAuthorityData: string } {
  const parsed = JSON.parse(kubeconfigJson) as { clusters?: { cluster?: { server?: string; 'certificate-authority-data'?: string } }[] };
  const cluster = parsed.clusters?.[0]?.cluster;
  if (!cluster?.server || !cluster['certificate-authority-data']) {
    throw new Error('the eks kubeconfig has no clusters[0].cluster.server / certificate-authority-data');
  }
  return { server: cluster.server, certificateAuthorityData: cluster['certificate-authority-data'] };
}
