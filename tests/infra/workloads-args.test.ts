/**
 * The pure parts of the workloads: stack config for the app, argument validation, shutdown
 * arithmetic, the ingress routes and NetworkPolicy guards, and `npm run plan --manifests`
 * end to end in a child process.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseStackConfig } from '../../platform/config';
import { PLACEMENT } from '../../platform/cluster';
import { validateWorkloadsArgs, type WorkloadsArgs } from '../../platform/workloads';
import { WORKER_MINIMUM_REASON } from '../../platform/workloads/autoscaling';
import { ingressRules, validateIngressSettings } from '../../platform/workloads/ingress';
import { loadBalancerPeers } from '../../platform/workloads/network-policies';
import { terminationGracePeriodSeconds } from '../../platform/workloads/pod';
import { PUBLIC_ROUTES } from '../../services/contract';
import { REPO_ROOT, yamlParser } from '../../tools/offline/capture';
import { parseFlags } from '../../tools/offline/plan';
import { rawConfig, stackConfigErrorOf } from './stack-config';

const configError = (stack: string, overrides: Record<string, string>) => stackConfigErrorOf(() => parseStackConfig(rawConfig(stack, overrides), stack));

describe('app stack config', () => {
  it('sizes dev small and prod for three zones, with WAF in prod only and a worker always running', () => {
    const dev = parseStackConfig(rawConfig('dev'), 'dev');
    const prod = parseStackConfig(rawConfig('prod'), 'prod');
    expect([dev.ingress.waf.enabled, prod.ingress.waf.enabled]).toEqual([false, true]);
    expect(prod.app.api.replicas.min).toBeGreaterThanOrEqual(prod.network.availabilityZones.length);
    expect([dev.app.zoneSpread, prod.app.zoneSpread]).toEqual(['preferred', 'required']);
    expect([dev.app.worker.replicas.min, prod.app.worker.replicas.min]).toEqual([1, 3]);
  });

  it.each([
    ['platform-kit:ingress.waf.enabled', 'true', 'dev', 'Pulumi.dev.yaml: platform-kit:ingress.waf.enabled needs platform-kit:cluster.loadBalancerController.wafv2: true'],
    ['platform-kit:app.api.replicas', '{"min":4,"max":2}', 'prod', 'Pulumi.prod.yaml: platform-kit:app.api.replicas.min must be ≤ max'],
    ['platform-kit:app.api.replicas', '{"min":0,"max":2}', 'prod', 'Pulumi.prod.yaml: platform-kit:app.api.replicas.min must be ≥ 1'],
    // A fleet scaled to zero pages WorkerAbsent and silences the alerts on the metrics the worker exports.
    ['platform-kit:app.worker.replicas', '{"min":0,"max":4}', 'dev', 'Pulumi.dev.yaml: platform-kit:app.worker.replicas.min must be at least 1: idle workers must not scale away'],
    ['platform-kit:app.worker.resources', '{"cpu":"half","memory":"1Gi"}', 'prod', 'Pulumi.prod.yaml: platform-kit:app.worker.resources.cpu must be a CPU quantity such as 250m or 1'],
    ['platform-kit:app.database', '{"appUser":"platform_app","scalerUser":"platform_app"}', 'prod', 'Pulumi.prod.yaml: platform-kit:app.database.scalerUser appUser and scalerUser must differ'],
    ['platform-kit:app.database', '{"appUser":"platform_admin","scalerUser":"platform_scaler"}', 'prod', 'Pulumi.prod.yaml: platform-kit:app.database must not name the master user'],
    ['platform-kit:app.namespace', '"monitoring"', 'prod', 'Pulumi.prod.yaml: platform-kit:app.namespace must not be monitoring, which the monitoring stack owns'],
    ['platform-kit:app.namespace', '"keda"', 'dev', 'Pulumi.dev.yaml: platform-kit:app.namespace must not be keda, which KEDA owns'],
    ['platform-kit:app.zoneSpread', '"always"', 'prod', 'Pulumi.prod.yaml: platform-kit:app.zoneSpread must be "required" or "preferred"'],
    ['platform-kit:app.logLevel', '"verbose"', 'prod', 'Pulumi.prod.yaml: platform-kit:app.logLevel must be one of fatal, error, warn, info, debug, trace'],
  ])('names the key when %s is %s', (key, value, stack, message) => {
    expect(configError(stack, { [key]: value })).toContain(message);
  });
});

describe('workloads args', () => {
  const sound: WorkloadsArgs = {
    namespace: 'platform',
    provider: undefined as never,
    after: [],
    image: 'repo@sha256:0',
    roleArns: { api: 'a', worker: 'w' },
    region: 'eu-west-1',
    database: { address: 'db', port: 5432, name: 'platform', owner: { user: 'platform_admin', password: 'p' } },
    redisUrl: 'rediss://:t@c:6379',
    buckets: { uploads: 'u', results: 'r' },
    api: { replicas: { min: 2, max: 4 }, resources: { cpu: '250m', memory: '512Mi' } },
    worker: { replicas: { min: 1, max: 4 }, concurrency: 10, resources: { cpu: '500m', memory: '1Gi' } },
    ingress: { domain: 'api.example.com', hostedZoneId: 'Z123', certificateArn: 'c', publicSubnetIds: [], loadBalancerCidrs: [], loadBalancerName: 'platform-kit-test-api' },
    vpcCidrBlock: '10.0.0.0/16',
    placement: { api: PLACEMENT.system, worker: PLACEMENT.jobs, migrations: PLACEMENT.system },
  };

  it('accepts sound args', () => {
    expect(validateWorkloadsArgs(sound)).toEqual([]);
  });

  it('names each unusable field', () => {
    expect(
      validateWorkloadsArgs({
        ...sound,
        namespace: 'Platform',
        api: { ...sound.api, replicas: { min: 0, max: 2 } },
        worker: { ...sound.worker, replicas: { min: 3, max: 2 }, concurrency: 0, jobsRunningPerUser: 0 },
        databaseRoles: { appUser: 'platform_admin', scalerUser: 'platform_scaler' },
        ingress: { ...sound.ingress, loadBalancerName: 'a-name-far-too-long-for-an-application-lb' },
      }),
    ).toEqual([
      'api.replicas must satisfy 1 ≤ min ≤ max (got 0..2)',
      `worker.replicas must satisfy 1 ≤ min ≤ max (got 3..2): ${WORKER_MINIMUM_REASON}`,
      'worker.concurrency must be a positive integer',
      'worker.jobsRunningPerUser must be a positive integer',
      'the app, scaler and owner database roles must be three different roles',
      'namespace Platform is not a Kubernetes namespace name',
      'loadBalancerName a-name-far-too-long-for-an-application-lb must be 1–32 letters, digits or dashes, not starting or ending with a dash',
    ]);
    expect(validateIngressSettings({ loadBalancerName: 'api', domain: '*.example.com' })).toEqual(['domain *.example.com must name one host']);
    expect(validateWorkloadsArgs({ ...sound, worker: { ...sound.worker, replicas: { min: 0, max: 4 } } })).toEqual([`worker.replicas must satisfy 1 ≤ min ≤ max (got 0..4): ${WORKER_MINIMUM_REASON}`]);
  });

  it('gives Kubernetes the preStop sleep, the drain and the close before SIGKILL', () => {
    expect(terminationGracePeriodSeconds({ preStopSeconds: 15, drainSeconds: 25, closeSeconds: 10 })).toBe(50);
    expect(terminationGracePeriodSeconds({ preStopSeconds: 5, drainSeconds: 660, closeSeconds: 15 })).toBe(680);
  });

  it('routes exactly the contract\'s public routes', () => {
    const [rule] = ingressRules('api.example.com', { name: 'api', port: 'http' });
    expect((rule?.http as { paths: { path: string }[] }).paths.map((p) => p.path)).toEqual(PUBLIC_ROUTES.map((r) => r.path));
  });

  it('refuses to build an api ingress rule from an empty subnet list, which would admit every source', () => {
    expect(() => loadBalancerPeers([])).toThrow(/would admit every source/);
    expect(loadBalancerPeers(['10.0.64.0/22'])).toEqual([{ ipBlock: { cidr: '10.0.64.0/22' } }]);
  });
});

describe('npm run plan --manifests', () => {
  it('parses the flag', () => {
    expect(parseFlags(['--stack', 'dev', '--manifests', 'out'])).toEqual({ stack: 'dev', json: false, manifests: 'out' });
    expect(parseFlags(['--stack=prod', '--manifests=out', '--json'])).toEqual({ stack: 'prod', json: true, manifests: 'out' });
    expect(() => parseFlags(['--stack', 'dev', '--manifests'])).toThrow('--manifests needs a directory');
  });

  it('writes every Kubernetes object of the stack as one YAML document per file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pk-manifests-'));
    try {
      const run = spawnSync(process.execPath, ['-r', '@swc-node/register', path.join(REPO_ROOT, 'tools/offline/plan.ts'), '--stack', 'dev', '--manifests', dir], { cwd: REPO_ROOT, encoding: 'utf8' });
      expect(run.status).toBe(0);
      expect(run.stdout).toMatch(/Kubernetes objects written to .*\n(.|\n)*apps\/v1 Deployment\s+2\n/);
      const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.yaml'));
      expect(files.length).toBeGreaterThan(25);
      expect(files).toEqual(expect.arrayContaining([path.join('platform', 'deployment-api.yaml'), path.join('platform', 'scaledobject-worker.yaml'), path.join('_cluster', 'namespace-platform.yaml')]));
      for (const f of files) {
        const doc = yamlParser().load(readFileSync(path.join(dir, f), 'utf8')) as { apiVersion: string; kind: string; metadata: { name: string } };
        expect(doc).toMatchObject({ apiVersion: expect.any(String), kind: expect.any(String), metadata: { name: expect.any(String) } });
      }
      const secrets = files.filter((f) => path.basename(f).startsWith('secret-')).map((f) => readFileSync(path.join(dir, f), 'utf8'));
      expect(secrets.length).toBeGreaterThan(0);
      for (const text of secrets) expect(text).not.toMatch(/postgres:\/\/|rediss:\/\/|password: (?!'\[secret\]')/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
