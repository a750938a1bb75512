import { allocatableMemoryMiB, capacityReport, INSTANCE_CAPACITY } from '../../platform/observability/capacity';
import { monitoringFootprint } from '../../platform/observability/sizing';
import { readStackFile } from '../../tools/observability/stack-file';

describe('system pool capacity', () => {
  it.each(['dev', 'prod'])('the %s monitoring node group holds the stack at its minimum size, pods and memory', (stack) => {
    const { config } = readStackFile(stack);
    const obs = config.observability;
    const group = config.cluster.nodeGroups.find((g) => g.name === obs.nodeGroup);
    if (!group) throw new Error(`${stack}: no node group ${obs.nodeGroup}`);
    const report = capacityReport({ name: group.name, instanceTypes: group.instanceTypes, nodes: group.minSize }, monitoringFootprint(obs));
    expect(report.requested.pods).toBeLessThanOrEqual(report.allocatable.pods);
    expect(report.requested.memoryMiB).toBeLessThanOrEqual(report.allocatable.memoryMiB);
    expect(report.fits).toBe(true);
  });

  it('says no when the stack outgrows the pool, and names an instance type it does not know', () => {
    const big = monitoringFootprint({ prometheus: { replicas: 2, memoryMiB: 6_144 }, alertmanager: { replicas: 3 }, loki: { replicas: 2, memoryMiB: 2_048 } });
    expect(capacityReport({ name: 'system', instanceTypes: ['m6i.large'], nodes: 2 }, big).fits).toBe(false);
    expect(() => capacityReport({ name: 'gpu', instanceTypes: ['p5.48xlarge'], nodes: 1 }, big)).toThrow(/instance type p5\.48xlarge is not in INSTANCE_CAPACITY/);
  });

  it('reserves what the kubelet and the kernel keep: an 8 GiB node offers about 7 GiB to pods', () => {
    const mib = allocatableMemoryMiB(INSTANCE_CAPACITY['m6i.large'] as (typeof INSTANCE_CAPACITY)[string]);
    expect(mib).toBeGreaterThan(6_800);
    expect(mib).toBeLessThan(7_400);
  });
});
