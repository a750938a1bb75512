import type * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { JOB_LABEL, PORTS, SCRAPE_TARGETS } from '../../services/contract';
import { PART_OF_LABELS, selectorLabels, type WorkloadRole } from './pod';

type NetworkPolicySpec = k8s.types.input.networking.v1.NetworkPolicySpec;

/** Ports of the data tier the services reach, from the contract of the cloud's own components. */
export const DATA_TIER_PORTS = { postgres: 5432, redis: 6379 } as const;

/** Instance metadata: IMDSv2 with hop limit 1 refuses pods already; the policy says it too. */
const INSTANCE_METADATA = '169.254.169.254/32';

export interface NetworkPolicyScope {
  /** Where the load balancer's nodes live (the public subnets): the only internet path to the api. */
  loadBalancerCidrs: pulumi.Input<string[]>;
  /** The VPC: RDS and ElastiCache have their addresses in its private subnets. */
  vpcCidrBlock: string;
  /** Namespace Prometheus scrapes from (the contract's `MONITORING.namespace` in the stacks). */
  monitoringNamespace: string;
}

const tcp = (port: number | string) => ({ protocol: 'TCP', port });
const inNamespace = (name: string) => ({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': name } } });
const pods = (...roles: WorkloadRole[]) =>
  roles.length === 1
    ? { matchLabels: selectorLabels(roles[0] as WorkloadRole) }
    : { matchExpressions: [{ key: JOB_LABEL, operator: 'In', values: roles }], matchLabels: { ...PART_OF_LABELS } };

/** An empty `from` admits every source: an empty list of subnets must fail, not open the api. */
export function loadBalancerPeers(cidrs: string[]): { ipBlock: { cidr: string } }[] {
  if (cidrs.length === 0) throw new Error('the load balancer subnets are unknown: refusing an api ingress rule that would admit every source');
  return cidrs.map((cidr) => ({ ipBlock: { cidr } }));
}

/**
 * The namespace's NetworkPolicies, by name. A default deny of both directions, then one
 * policy per flow the services need: DNS for every pod; the api from the load balancer's
 * subnets and from Prometheus; the worker's metrics from Prometheus; egress from the api
 * and worker to PostgreSQL, Redis and HTTPS (S3, STS, AWS APIs; not the instance metadata);
 * from the migrations Job to PostgreSQL only. Kubelet probes need no rule: the VPC CNI's
 * policy agent always admits a pod's own node.
 */
export function networkPolicySpecs(scope: NetworkPolicyScope): Record<string, NetworkPolicySpec> {
  return {
    'default-deny': { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
    'allow-dns': {
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [{ to: [{ ...inNamespace('kube-system'), podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }], ports: [{ protocol: 'UDP', port: 53 }, tcp(53)] }],
    },
    'api-ingress': {
      podSelector: pods('api'),
      policyTypes: ['Ingress'],
      ingress: [
        { from: pulumi.output(scope.loadBalancerCidrs).apply(loadBalancerPeers), ports: [tcp(PORTS.api)] },
        // Prometheus, on the port the ServiceMonitor scrapes (the serving port: /metrics is never routed by the Ingress).
        { from: [inNamespace(scope.monitoringNamespace)], ports: [tcp(SCRAPE_TARGETS.api.port)] },
      ],
    },
    'worker-ingress': {
      podSelector: pods('worker'),
      policyTypes: ['Ingress'],
      ingress: [{ from: [inNamespace(scope.monitoringNamespace)], ports: [tcp(SCRAPE_TARGETS.worker.port)] }],
    },
    'services-egress': {
      podSelector: pods('api', 'worker'),
      policyTypes: ['Egress'],
      egress: [
        { to: [{ ipBlock: { cidr: scope.vpcCidrBlock } }], ports: [tcp(DATA_TIER_PORTS.postgres), tcp(DATA_TIER_PORTS.redis)] },
        { to: [{ ipBlock: { cidr: '0.0.0.0/0', except: [INSTANCE_METADATA] } }], ports: [tcp(443)] },
      ],
    },
    'migrations-egress': {
      podSelector: pods('migrations'),
      policyTypes: ['Egress'],
      egress: [{ to: [{ ipBlock: { cidr: scope.vpcCidrBlock } }], ports: [tcp(DATA_TIER_PORTS.postgres)] }],
    },
  };
}
