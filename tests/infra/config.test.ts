import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { validateCacheArgs } from '../../platform/cache';
import { amiTypeFor, validateClusterArgs, type ClusterArgs } from '../../platform/cluster';
import { parseStackConfig } from '../../platform/config';
import { validateDatabaseArgs } from '../../platform/database';
import { validateIdentityArgs } from '../../platform/identity';
import { type NetworkArgs, subnetLayout, validateNetworkArgs } from '../../platform/network';
import { validateRegistryArgs } from '../../platform/registry';
import { validateStorageArgs } from '../../platform/storage';
import { captureStack, REPO_ROOT, redactSecrets, securePlaceholder, splitPath, stackFileConfig } from '../../tools/offline/capture';
import { parseFlags } from '../../tools/offline/plan';
import { rawConfig, stackConfigErrorOf } from './stack-config';

const errorOf = stackConfigErrorOf;

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
    expect([dev.cluster.endpointAccess.mode, prod.cluster.endpointAccess.mode]).toEqual(['restricted', 'private']);
    expect(prod.database.backupRetentionDays).toBeGreaterThanOrEqual(7);
    expect([dev.teardown.forceDestroy, prod.teardown.forceDestroy]).toEqual([true, false]);
  });

  it.each([
    ['platform-kit:database.instanceClass', 'm5.large', 'Pulumi.prod.yaml: platform-kit:database.instanceClass must be an RDS instance class (db.<family>.<size>)'],
    ['platform-kit:database.instanceClass', 'null', 'Pulumi.prod.yaml: platform-kit:database.instanceClass is required'],
    ['platform-kit:database.backupRetentionDays', '0', 'Pulumi.prod.yaml: platform-kit:database.backupRetentionDays must be at least 1 (0 disables backups and PITR)'],
    ['platform-kit:database.instanceClas', 'db.t4g.small', 'Pulumi.prod.yaml: platform-kit:database.instanceClas is not a known key'],
    ['platform-kit:cache.replicas', '"two"', 'Pulumi.prod.yaml: platform-kit:cache.replicas must be a number'],
    ['platform-kit:network.availabilityZones', '["us-east-1a","us-east-1b"]', 'Pulumi.prod.yaml: platform-kit:network.availabilityZones[0] must be a zone of eu-west-1 (aws:region)'],
    ['platform-kit:cluster.endpointAccess.deployerCidrs', '["0.0.0.0/0"]', 'Pulumi.prod.yaml: platform-kit:cluster.endpointAccess.deployerCidrs[0] must not be a /0 block'],
    ['platform-kit:cluster.charts.keda', '"^2.17.0"', 'Pulumi.prod.yaml: platform-kit:cluster.charts.keda must be an exact chart version'],
    ['aws:region', 'Ireland', 'Pulumi.prod.yaml: aws:region must be an AWS region such as eu-west-1'],
  ])('names the key and the file when %s is %s', (key, value, message) => {
    expect(errorOf(() => parseStackConfig(rawConfig('prod', { [key]: value }), 'prod'))).toContain(message);
  });

  it('reports a node group whose sizes contradict each other at the group', () => {
    const raw = rawConfig('dev', { 'platform-kit:cluster.nodeGroups': JSON.stringify([{ name: 'general', roles: ['system', 'jobs'], instanceTypes: ['t3.large'], minSize: 3, desiredSize: 2, maxSize: 4 }]) });
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

describe('stack config refuses what cannot be deployed', () => {
  const message = (stack: string, overrides: Record<string, string>) => errorOf(() => parseStackConfig(rawConfig(stack, overrides), stack));

  it('requires the deploy path to be stated', () => {
    const raw = rawConfig('prod');
    delete (raw.cluster as Record<string, unknown>).endpointAccess;
    expect(errorOf(() => parseStackConfig(raw, 'prod'))).toBe('Pulumi.prod.yaml: platform-kit:cluster.endpointAccess is required');
  });

  it.each([
    [
      'a private endpoint whose deployer lies outside the transit gateway routes',
      { 'platform-kit:cluster.endpointAccess.deployerCidrs': '["172.20.0.0/24"]' },
      'Pulumi.prod.yaml: platform-kit:cluster.endpointAccess.deployerCidrs[0] 172.20.0.0/24 is not routed to the VPC, so a private endpoint is unreachable from it: add platform-kit:network.transitGateway with a route covering it, or use mode restricted',
    ],
    [
      'a private endpoint deployed from inside the VPC it creates',
      { 'platform-kit:cluster.endpointAccess.deployerCidrs': '["10.30.8.0/24"]' },
      'Pulumi.prod.yaml: platform-kit:cluster.endpointAccess.deployerCidrs[0] 10.30.8.0/24 lies in the VPC (platform-kit:network.cidrBlock 10.30.0.0/16), which does not exist before the first up',
    ],
    [
      'a restricted public endpoint open to a private range it can never see',
      { 'platform-kit:cluster.endpointAccess.mode': 'restricted' },
      'Pulumi.prod.yaml: platform-kit:cluster.endpointAccess.deployerCidrs[0] 10.100.32.0/22 is a private range: a public endpoint only ever sees the deployer\'s public (NAT) address',
    ],
    ['no deployer network at all', { 'platform-kit:cluster.endpointAccess.deployerCidrs': '[]' }, 'Pulumi.prod.yaml: platform-kit:cluster.endpointAccess.deployerCidrs must list the networks `pulumi up` runs from'],
    ['an unknown mode', { 'platform-kit:cluster.endpointAccess.mode': 'public' }, 'Pulumi.prod.yaml: platform-kit:cluster.endpointAccess.mode must be "private" or "restricted"'],
  ])('refuses %s', (_what, overrides, expected) => {
    expect(message('prod', overrides)).toContain(expected);
  });

  it('refuses a private endpoint when nothing routes the deployers to the VPC', () => {
    const raw = rawConfig('prod');
    delete (raw.network as Record<string, unknown>).transitGateway;
    expect(errorOf(() => parseStackConfig(raw, 'prod')).split('\n')).toEqual([
      expect.stringMatching(/^Pulumi\.prod\.yaml: platform-kit:cluster\.endpointAccess\.deployerCidrs\[0\] 10\.100\.32\.0\/22 is not routed to the VPC/),
      expect.stringMatching(/^Pulumi\.prod\.yaml: platform-kit:cluster\.endpointAccess\.deployerCidrs\[1\] 10\.100\.0\.0\/20 is not routed to the VPC/),
    ]);
  });

  it('accepts a restricted public endpoint open to public deployer addresses', () => {
    const cfg = parseStackConfig(rawConfig('prod', { 'platform-kit:cluster.endpointAccess': JSON.stringify({ mode: 'restricted', deployerCidrs: ['198.51.100.0/24'] }) }), 'prod');
    expect(cfg.cluster.endpointAccess).toEqual({ mode: 'restricted', deployerCidrs: ['198.51.100.0/24'] });
  });

  it.each(['dev', 'prod'])('requires access entries in %s, naming the key', (stack) => {
    const raw = rawConfig(stack);
    delete (raw.cluster as Record<string, unknown>).access;
    expect(errorOf(() => parseStackConfig(raw, stack))).toBe(`Pulumi.${stack}.yaml: platform-kit:cluster.access is required`);
    const withoutViewers = rawConfig(stack);
    delete ((withoutViewers.cluster as Record<string, unknown>).access as Record<string, unknown>).viewers;
    expect(errorOf(() => parseStackConfig(withoutViewers, stack))).toBe(`Pulumi.${stack}.yaml: platform-kit:cluster.access.viewers is required`);
    expect(message(stack, { 'platform-kit:cluster.access.admins': '[]' })).toBe(`Pulumi.${stack}.yaml: platform-kit:cluster.access.admins must list at least one role (SRE break-glass) besides the deployer`);
    expect(message(stack, { 'platform-kit:cluster.access.viewers': '[]' })).toBe(`Pulumi.${stack}.yaml: platform-kit:cluster.access.viewers must list at least one read-only role`);
  });

  it('refuses a second access entry for the creator', () => {
    const deployer = String((rawConfig('prod').cluster as { access: { deployerRoleArn: string } }).access.deployerRoleArn);
    expect(message('prod', { 'platform-kit:cluster.access.admins': JSON.stringify([deployer]) })).toBe(
      'Pulumi.prod.yaml: platform-kit:cluster.access.admins[0] is the deployer role, which EKS already makes admin as the cluster creator; a second access entry for it fails',
    );
  });

  it('pins the PostgreSQL major only, and says why', () => {
    expect(message('prod', { 'platform-kit:database.engineVersion': '"16.8"' })).toBe(
      'Pulumi.prod.yaml: platform-kit:database.engineVersion must be a PostgreSQL major version such as "16" (RDS applies minor versions itself; a pinned minor would be downgraded by the next up)',
    );
  });

  it('refuses a version bump that leaves kube-proxy or the autoscaler behind', () => {
    expect(message('prod', { 'platform-kit:cluster.version': '"1.34"' }).split('\n')).toEqual([
      'Pulumi.prod.yaml: platform-kit:cluster.addons.kubeProxy must be a kube-proxy build of Kubernetes 1.34 (platform-kit:cluster.version), e.g. v1.34.0-eksbuild.1',
      'Pulumi.prod.yaml: platform-kit:cluster.autoscaler.imageTag must be a cluster-autoscaler release for Kubernetes 1.34 (platform-kit:cluster.version), e.g. v1.34.0',
    ]);
  });

  it('requires pinned add-on versions', () => {
    expect(message('dev', { 'platform-kit:cluster.addons.coredns': 'latest' })).toContain('Pulumi.dev.yaml: platform-kit:cluster.addons.coredns must be an exact EKS add-on version');
  });

  it('refuses retentions CloudWatch Logs rejects at up', () => {
    expect(message('dev', { 'platform-kit:cluster.logRetentionDays': '100' })).toContain('Pulumi.dev.yaml: platform-kit:cluster.logRetentionDays must be a retention CloudWatch Logs accepts');
  });

  it('requires a node group for each pool', () => {
    expect(message('prod', { 'platform-kit:cluster.nodeGroups': JSON.stringify([{ name: 'system', roles: ['system'], instanceTypes: ['m6i.large'], minSize: 3, desiredSize: 3, maxSize: 6 }]) })).toBe(
      'Pulumi.prod.yaml: platform-kit:cluster.nodeGroups must include a group serving the jobs role (job workers select it)',
    );
  });

  it('names the replaced keys as unknown', () => {
    expect(message('prod', { 'platform-kit:cluster.publicAccessCidrs': '[]' })).toContain('Pulumi.prod.yaml: platform-kit:cluster.publicAccessCidrs is not a known key');
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
    vpcCidrBlock: '10.0.0.0/16',
    privateSubnetIds: ['s1', 's2'],
    version: '1.33',
    endpointAccess: { mode: 'restricted', deployerCidrs: ['198.51.100.0/24'] },
    access: { admins: ['arn:aws:iam::111122223333:role/sre'], viewers: ['arn:aws:iam::111122223333:role/dev'] },
    nodeGroups: [{ name: 'general', roles: ['system', 'jobs'], instanceTypes: ['m6i.large'], minSize: 1, desiredSize: 2, maxSize: 3 }],
    addons: { vpcCni: 'v1.19.5-eksbuild.1', kubeProxy: 'v1.33.0-eksbuild.2', coredns: 'v1.12.1-eksbuild.2', ebsCsiDriver: 'v1.44.0-eksbuild.1' },
    charts: { awsLoadBalancerController: '1.13.4', metricsServer: '3.12.2', keda: '2.17.2', clusterAutoscaler: '9.47.0' },
    autoscalerImageTag: 'v1.33.0',
  };

  const network: NetworkArgs = { region: 'eu-west-1', availabilityZones: ['eu-west-1a', 'eu-west-1b'], flowLogs: { destination: { type: 'cloudwatch', retentionDays: 90 } } };

  it('accepts sound args', () => {
    expect(validateClusterArgs(cluster)).toEqual([]);
    expect(validateNetworkArgs(network)).toEqual([]);
  });

  it('rejects conflicting or unsafe args with the field named', () => {
    expect(validateClusterArgs({ ...cluster, nodeGroups: [{ name: 'g', roles: ['system', 'jobs'], instanceTypes: ['m7g.large', 'm6i.large'], minSize: 1, desiredSize: 1, maxSize: 1 }] })).toEqual([
      expect.stringContaining('node group g mixes Graviton and x86'),
    ]);
    expect(validateClusterArgs({ ...cluster, endpointAccess: { mode: 'restricted', deployerCidrs: ['0.0.0.0/0'] } })).toEqual([expect.stringContaining('opens the endpoint to the internet')]);
    expect(validateNetworkArgs({ ...network, availabilityZones: ['eu-west-1a', 'us-east-1b'], cidrBlock: '10.0.0.0/24' })).toEqual([
      expect.stringContaining('cidrBlock 10.0.0.0/24 must be a /16 to /22'),
      'availability zone us-east-1b is not in region eu-west-1',
    ]);
    expect(validateDatabaseArgs({ vpcId: 'v', subnetIds: [], allowedSecurityGroups: {}, instanceClass: 'db.t4g.micro', engineVersion: '12' })).toEqual([
      expect.stringContaining('major 12 is not one of'),
      expect.stringContaining('allowedSecurityGroups must name at least one source'),
      expect.stringContaining('too small for Multi-AZ'),
    ]);
    expect(validateCacheArgs({ vpcId: 'v', subnetIds: [], allowedSecurityGroups: { a: 'sg' }, nodeType: 'cache.t4g.small', replicas: 6, engineVersion: '6.2' })).toEqual([
      expect.stringContaining('engineVersion 6.2'),
      expect.stringContaining('replicas 6'),
    ]);
    expect(validateStorageArgs({ buckets: { uploads: { expireDays: 0 } }, accessLogs: { bucketName: 'logs', prefix: 's3-access/' } })).toEqual(['bucket uploads: expireDays must be a positive integer']);
    expect(validateRegistryArgs({ repositoryName: 'Bad Name', keepTaggedImages: 0 })).toHaveLength(2);
    expect(
      validateIdentityArgs({ oidc: { providerArn: 'a', issuer: 'i' }, namespace: 'n', buckets: { uploads: { arn: 'a' } }, bucketKeyArn: 'k', objectPrefix: '/x', workloads: { api: { serviceAccount: 'api', buckets: { results: ['read'] } } } }),
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
