import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { validateCacheArgs } from '../../platform/cache';
import { amiTypeFor, validateClusterArgs, type ClusterArgs } from '../../platform/cluster';
import { PROJECT, StackConfigError, parseStackConfig } from '../../platform/config';
import { validateDatabaseArgs } from '../../platform/database';
import { validateIdentityArgs } from '../../platform/identity';
import { subnetLayout, validateNetworkArgs } from '../../platform/network';
import { validateRegistryArgs } from '../../platform/registry';
import { validateStorageArgs } from '../../platform/storage';
import { applyOverrides, captureStack, REPO_ROOT, redactSecrets, securePlaceholder, splitPath, stackFileConfig } from '../../tools/offline/capture';
import { parseFlags } from '../../tools/offline/plan';

/** The raw object `loadStackConfig` builds from the runtime config, built here from a stack file. */
function rawConfig(stack: string, overrides: Record<string, string> = {}): Record<string, unknown> {
  const file = `Pulumi.${stack}.yaml`;
  const { config } = stackFileConfig(readFileSync(path.join(REPO_ROOT, file), 'utf8'), file);
  const all = applyOverrides(config, overrides);
  const raw: Record<string, unknown> = { region: all['aws:region'] };
  for (const [k, v] of Object.entries(all)) if (k.startsWith(`${PROJECT}:`)) raw[k.slice(PROJECT.length + 1)] = JSON.parse(v);
  return raw;
}

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StackConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a StackConfigError');
}

describe('stack config', () => {
  it.each(['dev', 'prod'])('accepts Pulumi.%s.yaml', (stack) => {
    const cfg = parseStackConfig(rawConfig(stack), stack);
    expect(cfg.region).toBe('eu-west-1');
    expect(cfg.cluster.nodeGroups.length).toBeGreaterThan(0);
  });

  it('makes dev cheaper and prod more resilient', () => {
    const dev = parseStackConfig(rawConfig('dev'), 'dev');
    const prod = parseStackConfig(rawConfig('prod'), 'prod');
    expect([dev.network.natGateways, prod.network.natGateways]).toEqual(['single', 'onePerAz']);
    expect([dev.database.multiAz, prod.database.multiAz]).toEqual([false, true]);
    expect([dev.cache.replicas > 0, prod.cache.replicas > 0]).toEqual([false, true]);
    expect(dev.cluster.publicAccessCidrs.length).toBeGreaterThan(0);
    expect(prod.cluster.publicAccessCidrs).toEqual([]);
    expect(prod.database.backupRetentionDays).toBeGreaterThanOrEqual(7);
  });

  it.each([
    ['platform-kit:database.instanceClass', 'm5.large', 'Pulumi.prod.yaml: platform-kit:database.instanceClass must be an RDS instance class (db.<family>.<size>)'],
    ['platform-kit:database.instanceClass', 'null', 'Pulumi.prod.yaml: platform-kit:database.instanceClass is required'],
    ['platform-kit:database.backupRetentionDays', '0', 'Pulumi.prod.yaml: platform-kit:database.backupRetentionDays must be at least 1 (0 disables backups and PITR)'],
    ['platform-kit:database.instanceClas', 'db.t4g.small', 'Pulumi.prod.yaml: platform-kit:database.instanceClas is not a known key'],
    ['platform-kit:cache.replicas', '"two"', 'Pulumi.prod.yaml: platform-kit:cache.replicas must be a number'],
    ['platform-kit:network.availabilityZones', '["us-east-1a","us-east-1b"]', 'Pulumi.prod.yaml: platform-kit:network.availabilityZones[0] must be a zone of eu-west-1 (aws:region)'],
    ['platform-kit:cluster.publicAccessCidrs', '["0.0.0.0/0"]', 'Pulumi.prod.yaml: platform-kit:cluster.publicAccessCidrs[0] must not be a /0 block'],
    ['platform-kit:cluster.charts.keda', '"^2.17.0"', 'Pulumi.prod.yaml: platform-kit:cluster.charts.keda must be an exact chart version'],
    ['aws:region', 'Ireland', 'Pulumi.prod.yaml: aws:region must be an AWS region such as eu-west-1'],
  ])('names the key and the file when %s is %s', (key, value, message) => {
    expect(errorOf(() => parseStackConfig(rawConfig('prod', { [key]: value }), 'prod'))).toContain(message);
  });

  it('reports a node group whose sizes contradict each other at the group', () => {
    const raw = rawConfig('dev', { 'platform-kit:cluster.nodeGroups': JSON.stringify([{ name: 'general', instanceTypes: ['t3.large'], minSize: 3, desiredSize: 2, maxSize: 4 }]) });
    expect(errorOf(() => parseStackConfig(raw, 'dev'))).toBe('Pulumi.dev.yaml: platform-kit:cluster.nodeGroups[0] must satisfy minSize ≤ desiredSize ≤ maxSize');
  });

  it('lists every problem at once, one line each', () => {
    const raw = rawConfig('dev', { 'platform-kit:database.instanceClass': 'big', 'platform-kit:cache.nodeType': 'small' });
    expect(errorOf(() => parseStackConfig(raw, 'dev')).split('\n')).toEqual([
      expect.stringMatching(/^Pulumi\.dev\.yaml: platform-kit:database\.instanceClass must be/),
      expect.stringMatching(/^Pulumi\.dev\.yaml: platform-kit:cache\.nodeType must be/),
    ]);
  });

  it('fails the program itself with the named error, as a rejected capture and nothing left running', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      await expect(captureStack('prod', { config: { 'platform-kit:database.instanceClass': 'm5.large' } })).rejects.toThrow(
        'Pulumi.prod.yaml: platform-kit:database.instanceClass must be an RDS instance class (db.<family>.<size>)',
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(unhandled).toEqual([]);
      // One capture per module registry: a second call says so instead of returning a stale graph.
      await expect(captureStack('dev')).rejects.toThrow(/once per process/);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('stack files under mocks', () => {
  it('turns secure: values into placeholders marked secret (ciphertext cannot be read offline)', () => {
    const yaml = ['config:', '  aws:region: eu-west-1', '  platform-kit:alerts:', '    webhook:', '      secure: v1:abc==', '  platform-kit:token:', '    secure: v1:def=='].join('\n');
    const { config, secretKeys } = stackFileConfig(yaml, 'Pulumi.x.yaml');
    expect(config['platform-kit:token']).toBe(securePlaceholder('platform-kit:token'));
    expect(JSON.parse(config['platform-kit:alerts'] ?? '')).toEqual({ webhook: securePlaceholder('platform-kit:alerts') });
    expect(secretKeys.sort()).toEqual(['platform-kit:alerts', 'platform-kit:token']);
  });

  it('redacts secrets by path, including keys that contain dots', () => {
    const inputs = { password: 'p', nested: { 'a.b': ['x', 's'] }, keep: 'k' };
    expect(splitPath('nested["a.b"].1')).toEqual(['nested', 'a.b', '1']);
    expect(redactSecrets(inputs, ['password', 'nested["a.b"].1'])).toEqual({ password: '[secret]', nested: { 'a.b': ['x', '[secret]'] }, keep: 'k' });
    expect(inputs.password).toBe('p');
  });
});

describe('component validation (before anything is created)', () => {
  const cluster: ClusterArgs = {
    region: 'eu-west-1',
    vpcId: 'vpc-1',
    privateSubnetIds: ['s1', 's2'],
    version: '1.33',
    nodeGroups: [{ name: 'general', instanceTypes: ['m6i.large'], minSize: 1, desiredSize: 2, maxSize: 3 }],
    charts: { awsLoadBalancerController: '1.13.4', metricsServer: '3.12.2', keda: '2.17.2' },
  };

  it('accepts sound args', () => {
    expect(validateClusterArgs(cluster)).toEqual([]);
    expect(validateNetworkArgs({ region: 'eu-west-1', availabilityZones: ['eu-west-1a', 'eu-west-1b'] })).toEqual([]);
  });

  it('rejects conflicting or unsafe args with the field named', () => {
    expect(validateClusterArgs({ ...cluster, nodeGroups: [{ name: 'g', instanceTypes: ['m7g.large', 'm6i.large'], minSize: 1, desiredSize: 1, maxSize: 1 }] })).toEqual([
      expect.stringContaining('node group g mixes Graviton and x86'),
    ]);
    expect(validateClusterArgs({ ...cluster, publicAccessCidrs: ['0.0.0.0/0'] })).toEqual([expect.stringContaining('opens the endpoint to the internet')]);
    expect(validateNetworkArgs({ region: 'eu-west-1', availabilityZones: ['eu-west-1a', 'us-east-1b'], cidrBlock: '10.0.0.0/24' })).toEqual([
      expect.stringContaining('cidrBlock 10.0.0.0/24 must be a /16 to /22'),
      'availability zone us-east-1b is not in region eu-west-1',
    ]);
    expect(validateDatabaseArgs({ vpcId: 'v', subnetIds: [], allowedSecurityGroups: {}, instanceClass: 'db.t4g.micro', engineVersion: '12.1' })).toEqual([
      expect.stringContaining('major 12 is not one of'),
      expect.stringContaining('allowedSecurityGroups must name at least one source'),
      expect.stringContaining('too small for Multi-AZ'),
    ]);
    expect(validateCacheArgs({ vpcId: 'v', subnetIds: [], allowedSecurityGroups: { a: 'sg' }, nodeType: 'cache.t4g.small', replicas: 6, engineVersion: '6.2' })).toEqual([
      expect.stringContaining('engineVersion 6.2'),
      expect.stringContaining('replicas 6'),
    ]);
    expect(validateStorageArgs({ buckets: { uploads: { expireDays: 0 } } })).toEqual(['bucket uploads: expireDays must be a positive integer']);
    expect(validateRegistryArgs({ repositoryName: 'Bad Name', keepTaggedImages: 0 })).toHaveLength(2);
    expect(
      validateIdentityArgs({ oidc: { providerArn: 'a', issuer: 'i' }, namespace: 'n', buckets: { uploads: { arn: 'a' } }, bucketKeyArn: 'k', objectPrefix: '/x', workloads: { api: { serviceAccount: 'api', buckets: { results: 'read' } } } }),
    ).toEqual([expect.stringContaining('objectPrefix /x'), expect.stringContaining('workload api asks for bucket results')]);
  });

  it('derives subnet sizes and AMI types without surprises', () => {
    expect(subnetLayout('10.20.0.0/16')).toEqual({ privateCidrMask: 19, publicCidrMask: 22 });
    expect(amiTypeFor(['m7g.large', 't4g.medium'])).toBe('AL2023_ARM_64_STANDARD');
    expect(amiTypeFor(['t3.large', 't3a.large'])).toBe('AL2023_x86_64_STANDARD');
  });
});

describe('npm run plan flags', () => {
  it('parses --stack and --json and rejects anything else', () => {
    expect(parseFlags(['--stack', 'prod', '--json'])).toEqual({ stack: 'prod', json: true });
    expect(parseFlags(['--stack=dev'])).toEqual({ stack: 'dev', json: false });
    expect(() => parseFlags(['--stack', 'staging'])).toThrow('unknown stack "staging" (expected one of dev, prod)');
    expect(() => parseFlags([])).toThrow('--stack is required');
    expect(() => parseFlags(['--stack', 'dev', '--yaml'])).toThrow('unknown argument "--yaml"');
  });

  it('exits 2 with the reason on an unknown stack', () => {
    const run = spawnSync(process.execPath, ['-r', '@swc-node/register', path.join(REPO_ROOT, 'tools/offline/plan.ts'), '--stack', 'staging'], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('error: unknown stack "staging" (expected one of dev, prod)');
  });
});

describe('ARNs', () => {
  it('are never hard-coded to the aws partition in the program', () => {
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir)) {
        const p = path.join(dir, entry);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts') && /arn:aws:/.test(readFileSync(p, 'utf8'))) offenders.push(path.relative(REPO_ROOT, p));
      }
    };
    walk(path.join(REPO_ROOT, 'platform'));
    walk(path.join(REPO_ROOT, 'stacks'));
    expect(offenders).toEqual([]);
  });
});
