import { parseStackConfig, type StackConfig } from '../../platform/config';
import { allocatableMemoryMiB, capacityReport, INSTANCE_CAPACITY, landingOn, poolAtMinimum } from '../../platform/observability/capacity';
import { monitoringFootprint } from '../../platform/observability/sizing';
import { cpuMillis, memoryMiB, workloadsFootprint } from '../../platform/workloads/footprint';
import { readStackFile } from '../../tools/observability/stack-file';
import { rawConfig } from '../infra/stack-config';
import { systemPoolFootprint } from './stack';

describe('system pool capacity', () => {
  it.each(['dev', 'prod'])('the %s system pool holds the monitoring stack, the api, the migrations Job and the add-ons at its minimum size, pods and memory', (stack) => {
    const { config } = readStackFile(stack);
    const pool = poolAtMinimum('system', config.cluster.nodeGroups);
    expect(pool.groups.length).toBeGreaterThan(0);
    const footprint = systemPoolFootprint(config);
    expect(footprint.map((f) => f.component)).toEqual(expect.arrayContaining(['prometheus', 'api', 'migrations']));
    const report = capacityReport(pool, footprint);
    expect(report.requested.pods).toBeLessThanOrEqual(report.allocatable.pods);
    expect(report.requested.memoryMiB).toBeLessThanOrEqual(report.allocatable.memoryMiB);
    expect(report.fits).toBe(true);
  });

  it('counts the api at its minimum plus a rollout\'s surge pod, and the worker only where its nodes are the system pool\'s (dev\'s one group)', () => {
    const components = (stack: string) => systemPoolFootprint(readStackFile(stack).config).filter((f) => ['api', 'worker', 'migrations'].includes(f.component));
    const dev = readStackFile('dev').config.app;
    expect(components('dev')).toEqual([
      { component: 'api', pods: dev.api.replicas.min + 1, cpuMillis: cpuMillis(dev.api.resources.cpu), memoryMiB: memoryMiB(dev.api.resources.memory) },
      { component: 'worker', pods: dev.worker.replicas.min + 1, cpuMillis: cpuMillis(dev.worker.resources.cpu), memoryMiB: memoryMiB(dev.worker.resources.memory) },
      { component: 'migrations', pods: 1, cpuMillis: 100, memoryMiB: 256 },
    ]);
    // Prod's jobs pool is its own tainted group: the workers never land on the system nodes.
    expect(components('prod').map((f) => f.component)).toEqual(['api', 'migrations']);
    expect(landingOn('jobs', [{ roles: ['system'] }, { roles: ['jobs'] }], workloadsFootprint(readStackFile('prod').config.app)).map((f) => f.component)).toEqual(['worker']);
  });

  it('reads the quantities the stack config accepts', () => {
    expect([cpuMillis('250m'), cpuMillis('1'), cpuMillis('0.5')]).toEqual([250, 1000, 500]);
    expect([memoryMiB('384Mi'), memoryMiB('2Gi')]).toEqual([384, 2048]);
    expect(() => memoryMiB('1G')).toThrow(/not a memory quantity/);
  });

  it('says no when the api\'s minimum outgrows prod\'s system pool, which the monitoring stack alone fits', () => {
    const config = (api: string): StackConfig => parseStackConfig(rawConfig('prod', { 'platform-kit:app.api': api }), 'prod');
    const crowded = config(JSON.stringify({ replicas: { min: 12, max: 12 }, resources: { cpu: '500m', memory: '768Mi' } }));
    const pool = poolAtMinimum('system', crowded.cluster.nodeGroups);
    expect(capacityReport(pool, monitoringFootprint(crowded.observability)).fits).toBe(true);
    expect(capacityReport(pool, systemPoolFootprint(crowded)).fits).toBe(false);
  });

  it('counts the groups whose roles include system, never a jobs-only group', () => {
    const groups = (stack: string) => poolAtMinimum('system', readStackFile(stack).config.cluster.nodeGroups).groups;
    expect(groups('prod')).toEqual([{ name: 'system', instanceTypes: ['m6i.large'], nodes: 3 }]);
    expect(groups('dev')).toEqual([{ name: 'general', instanceTypes: ['t3.large', 't3a.large'], nodes: 1 }]);
  });

  it('sums every group of the pool, DaemonSet pods once per node of it', () => {
    const footprint = monitoringFootprint({ prometheus: { replicas: 1, memoryMiB: 1_024 }, alertmanager: { replicas: 1 }, loki: { replicas: 1, memoryMiB: 512 } });
    const one = capacityReport({ name: 'system', groups: [{ name: 'a', instanceTypes: ['m6i.large'], nodes: 1 }] }, footprint);
    const two = capacityReport({ name: 'system', groups: [{ name: 'a', instanceTypes: ['m6i.large'], nodes: 1 }, { name: 'b', instanceTypes: ['m6i.xlarge'], nodes: 1 }] }, footprint);
    expect(two.nodes).toBe(2);
    expect(two.allocatable.memoryMiB).toBe(one.allocatable.memoryMiB + allocatableMemoryMiB(INSTANCE_CAPACITY['m6i.xlarge'] as (typeof INSTANCE_CAPACITY)[string]));
    const perNodePods = footprint.filter((f) => f.pods === 'per-node').length + 3;
    expect(two.requested.pods - one.requested.pods).toBe(perNodePods);
  });

  it('says no when the stack outgrows the pool, and names an instance type it does not know', () => {
    const big = monitoringFootprint({ prometheus: { replicas: 2, memoryMiB: 6_144 }, alertmanager: { replicas: 3 }, loki: { replicas: 2, memoryMiB: 2_048 } });
    expect(capacityReport({ name: 'system', groups: [{ name: 'system', instanceTypes: ['m6i.large'], nodes: 2 }] }, big).fits).toBe(false);
    expect(() => capacityReport({ name: 'system', groups: [{ name: 'gpu', instanceTypes: ['p5.48xlarge'], nodes: 1 }] }, big)).toThrow(/node group gpu: instance type p5\.48xlarge is not in INSTANCE_CAPACITY/);
    const prod = readStackFile('prod').config;
    const shrunk = prod.cluster.nodeGroups.map((g) => (g.roles.includes('system') ? { ...g, minSize: 1 } : g));
    expect(capacityReport(poolAtMinimum('system', shrunk), monitoringFootprint(prod.observability)).fits).toBe(false);
  });

  it('reserves what the kubelet and the kernel keep: an 8 GiB node offers about 7 GiB to pods', () => {
    const mib = allocatableMemoryMiB(INSTANCE_CAPACITY['m6i.large'] as (typeof INSTANCE_CAPACITY)[string]);
    expect(mib).toBeGreaterThan(6_800);
    expect(mib).toBeLessThan(7_400);
  });
});
