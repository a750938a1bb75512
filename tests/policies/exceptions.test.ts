import { POD_SECURITY_EXCEPTIONS } from '../../policies/kubernetes/exceptions';
import { MONITORING } from '../../services/contract';

describe('Pod Security exceptions', () => {
  it('list exactly one namespace, the monitoring node agents\' own, at privileged, with its reason', () => {
    expect(Object.keys(POD_SECURITY_EXCEPTIONS)).toEqual([MONITORING.nodeAgentsNamespace]);
    expect(POD_SECURITY_EXCEPTIONS[MONITORING.nodeAgentsNamespace]).toEqual({ level: 'privileged', reason: expect.stringMatching(/node-exporter.*log shipper/) });
  });

  it('never name the namespace where Prometheus, Grafana and Loki run', () => {
    expect(POD_SECURITY_EXCEPTIONS[MONITORING.namespace]).toBeUndefined();
  });
});
