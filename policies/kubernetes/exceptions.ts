import { MONITORING } from '../../services/contract/metrics';

/** Pod Security levels below `restricted` that a listed namespace may enforce. */
export type ExceptionLevel = 'baseline' | 'privileged';

export interface PodSecurityException {
  level: ExceptionLevel;
  /** Why the namespace cannot be `restricted`; the Namespace must carry it as an annotation. */
  reason: string;
}

/**
 * The only namespaces allowed below Pod Security `restricted`, each named exactly (no
 * prefixes, no "monitoring" as a whole: Prometheus, Grafana and Loki run restricted).
 * Adding an entry is a reviewed change to this file, with its test in tests/policies.
 */
export const POD_SECURITY_EXCEPTIONS: Readonly<Record<string, PodSecurityException>> = {
  [MONITORING.nodeAgentsNamespace]: {
    level: 'privileged',
    reason:
      'Node agents only: node-exporter reads /proc, /sys and the root filesystem in the host PID and network namespaces; the log shipper reads /var/log/pods from the host and scrapes kube-proxy on the node loopback.',
  },
};
