import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ResourceValidationPolicy } from '@pulumi/policy';
import { ALL_POLICIES, PACK_NAME, levelOf, policyPackConfigFor, stackFromEnv, toCrossGuard } from '../../policies/catalog';
import { evaluate, reconcileConfig } from '../../tools/offline/evaluate';
import { generatedFiles } from '../../tools/offline/policy-readme';
import { parseFlags, renderReport } from '../../tools/offline/policy';
import { craft, policyNamed } from './helpers';

const unencrypted = () => craft('aws:rds/instance:Instance', 'db', { engine: 'postgres', instanceClass: 'db.t4g.micro', multiAz: false });

describe('enforcement per stack', () => {
  it('is mandatory everywhere in prod; in dev only resilience is advisory', () => {
    for (const p of ALL_POLICIES) {
      expect(levelOf(p, 'prod')).toBe('mandatory');
      expect(levelOf(p, 'dev')).toBe(p.platform.concern === 'resilience' ? 'advisory' : 'mandatory');
    }
  });

  it('reports a dev resilience finding as advisory and a security one as mandatory', async () => {
    const report = await evaluate({ stack: 'dev', resources: [unencrypted()] }, { policies: [policyNamed('aws-rds-instance-multi-az'), policyNamed('aws-rds-storage-encrypted')] });
    expect(report.results.map((r) => [r.policy, r.level, r.violations.length])).toEqual([
      ['aws-rds-instance-multi-az', 'advisory', 1],
      ['aws-rds-storage-encrypted', 'mandatory', 1],
    ]);
    expect([report.mandatory, report.advisory]).toEqual([1, 1]);
  });

  it('reads the stack the engine names in PULUMI_STACK, prod when unknown', () => {
    expect(stackFromEnv({ PULUMI_STACK: 'dev' })).toBe('dev');
    expect(stackFromEnv({ PULUMI_NODEJS_STACK: 'acme/platform-kit/dev' })).toBe('dev');
    expect(stackFromEnv({ PULUMI_STACK: 'staging' })).toBe('prod');
    expect(stackFromEnv({})).toBe('prod');
  });

  it('hands the engine plain CrossGuard policies at the stack level', () => {
    const plain = toCrossGuard(policyNamed('aws-rds-instance-multi-az'), 'dev') as ResourceValidationPolicy & { platform?: unknown };
    expect(plain.enforcementLevel).toBe('advisory');
    expect(plain.platform).toBeUndefined();
    expect(policyPackConfigFor('dev')['aws-eks-cluster-endpoint-access']).toEqual({ enforcementLevel: 'mandatory', allowPublicEndpoint: true });
  });
});

describe('config reconciliation, as the engine does it', () => {
  it('layers schema defaults, the stack config and overrides (all first)', () => {
    const p = [policyNamed('aws-rds-backup-retention'), policyNamed('aws-instance-class-allow-list')];
    const cfg = reconcileConfig(p, 'dev', { all: 'disabled', 'aws-rds-backup-retention': { enforcementLevel: 'mandatory', minimumDays: 14 } });
    expect(cfg.get('aws-rds-backup-retention')).toEqual({ level: 'mandatory', props: { minimumDays: 14 } });
    expect(cfg.get('aws-instance-class-allow-list')?.level).toBe('disabled');
    expect(cfg.get('aws-instance-class-allow-list')?.props.allowedInstanceClasses).toContain('db.t4g.micro');
  });

  it('skips a disabled policy and applies overridden knobs', async () => {
    const report = await evaluate(
      { stack: 'prod', resources: [unencrypted()] },
      { policies: [policyNamed('aws-rds-storage-encrypted'), policyNamed('aws-rds-backup-retention')], config: { 'aws-rds-storage-encrypted': 'disabled', 'aws-rds-backup-retention': { minimumDays: 30 } } },
    );
    expect(report.results[0]).toMatchObject({ level: 'disabled', checked: 0, violations: [] });
    expect(report.results[1]?.violations[0]?.message).toMatch(/at least 30 required/);
  });
});

describe('the analyzer contract', () => {
  it('counts only resources a policy applies to (notApplicable is caught)', async () => {
    const report = await evaluate(
      { stack: 'prod', resources: [unencrypted(), craft('aws:kms/key:Key', 'k'), craft('aws:ecr/repository:Repository', 'r')] },
      { policies: [policyNamed('aws-rds-storage-encrypted'), policyNamed('aws-ecr-repository-scan-on-push')] },
    );
    expect(report.results.map((r) => r.checked)).toEqual([1, 1]);
  });

  it('skips a typed validation for other types without calling it', async () => {
    const calls: string[] = [];
    const validation = Object.assign((args: { type: string }) => void calls.push(args.type), { __pulumiType: 'aws:ecr/repository:Repository' });
    const probe = { ...policyNamed('aws-ecr-repository-scan-on-push'), validateResource: validation };
    await evaluate({ stack: 'prod', resources: [unencrypted(), craft('aws:ecr/repository:Repository', 'r')] }, { policies: [probe] });
    expect(calls).toEqual(['aws:ecr/repository:Repository']);
  });

  it('gives stack policies parents and dependencies as objects', async () => {
    let seen: unknown;
    const parent = craft('platform:index:Storage', 'storage');
    const bucket = craft('aws:s3/bucket:Bucket', 'b', {}, { parent });
    const block = craft('aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock', 'b-pab', {}, { parent, via: { bucket: [bucket] } });
    const probe = {
      ...policyNamed('aws-s3-bucket-public-access-blocked'),
      validateStack: (args: { resources: { urn: string; parent?: { urn: string }; dependencies: { urn: string }[]; propertyDependencies: Record<string, { urn: string }[]> }[] }) => {
        const pab = args.resources.find((r) => r.urn === block.urn);
        seen = { parent: pab?.parent?.urn, deps: pab?.dependencies.map((d) => d.urn), bucket: pab?.propertyDependencies.bucket?.map((d) => d.urn) };
      },
    };
    await evaluate({ stack: 'prod', resources: [parent, bucket, block] }, { policies: [probe] });
    expect(seen).toEqual({ parent: parent.urn, deps: [bucket.urn], bucket: [bucket.urn] });
  });

  it('surfaces an exception from a rule as an error naming the policy and resource', async () => {
    const broken = { ...policyNamed('aws-rds-storage-encrypted'), validateResource: () => { throw new Error('boom'); } };
    await expect(evaluate({ stack: 'prod', resources: [unencrypted()] }, { policies: [broken] })).rejects.toThrow(
      /policy 'aws-rds-storage-encrypted'.*boom/,
    );
  });

  it('hands each validation its own copy of the inputs', async () => {
    const r = unencrypted();
    const mutating = { ...policyNamed('aws-rds-storage-encrypted'), validateResource: (args: { props: Record<string, unknown> }) => void (args.props.storageEncrypted = true) };
    await evaluate({ stack: 'prod', resources: [r] }, { policies: [mutating] });
    expect(r.inputs.storageEncrypted).toBeUndefined();
  });

  it('lists Helm v3 releases as opaque', async () => {
    const report = await evaluate({ stack: 'prod', resources: [craft('kubernetes:helm.sh/v3:Release', 'keda', { chart: 'keda', version: '2.17.2', repositoryOpts: { repo: 'https://kedacore.github.io/charts' } })] }, { policies: [] });
    expect(report.opaqueReleases).toEqual([{ urn: expect.stringContaining('keda') as unknown, chart: 'keda@2.17.2 from https://kedacore.github.io/charts' }]);
  });
});

describe('generated files', () => {
  it.each(generatedFiles().map((f) => [path.relative(process.cwd(), f.path), f] as const))('%s is current (npm run policy -- --readme)', (_rel, f) => {
    expect(fs.readFileSync(f.path, 'utf8')).toBe(f.content);
  });

  it('no test or tool imports policies/index.ts (it starts a server that never exits)', () => {
    const walk = (d: string): string[] =>
      fs.readdirSync(d, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? (e.name === 'node_modules' ? [] : walk(path.join(d, e.name))) : e.name.endsWith('.ts') ? [path.join(d, e.name)] : [],
      );
    const files = ['tests', 'tools', 'policies'].flatMap((d) => walk(path.join(__dirname, '..', '..', d)));
    const importers = files.filter((f) => /from ['"][./]*policies(\/index)?['"]|from ['"]\.\/index['"]|require\(['"][./]*policies(\/index)?['"]\)/.test(fs.readFileSync(f, 'utf8')));
    expect(importers.map((f) => path.relative(process.cwd(), f))).toEqual([]);
  });
});

describe('the pack as the CLI loads it', () => {
  // What `new PolicyPack` hands the engine, built without starting the server.
  const { makeAnalyzerInfo } = jest.requireActual<{ makeAnalyzerInfo: (...a: unknown[]) => { toObject(): { policiesList: { name: string; enforcementlevel: number }[]; initialconfigMap: [string, unknown][] } } }>('@pulumi/policy/protoutil');

  it.each(['dev', 'prod'] as const)('serializes every policy, its schema and the %s initial config', (stack) => {
    const info = makeAnalyzerInfo(PACK_NAME, '0.1.0', 'mandatory', { policies: ALL_POLICIES.map((p) => toCrossGuard(p, stack)) }, policyPackConfigFor(stack)).toObject();
    expect(info.policiesList.map((p) => p.name)).toEqual(ALL_POLICIES.map((p) => p.name));
    expect(info.initialconfigMap.map(([k]) => k).sort()).toEqual(ALL_POLICIES.map((p) => p.name).sort());
    expect(new Set(ALL_POLICIES.map((p) => p.name)).size).toBe(ALL_POLICIES.length);
    for (const p of ALL_POLICIES) expect(p.name).toMatch(/^[a-z0-9-]+$/);
  });
});

describe('npm run policy flags', () => {
  it('accepts a stack, --json and --readme', () => {
    expect(parseFlags(['--stack', 'prod', '--json'])).toEqual({ stack: 'prod', json: true, readme: false });
    expect(parseFlags(['--stack=dev'])).toMatchObject({ stack: 'dev' });
    expect(parseFlags(['--readme'])).toMatchObject({ readme: true });
  });

  it.each([
    [[], /--stack is required/],
    [['--stack', 'staging'], /--stack must be one of dev, prod \(got "staging"\)/],
    [['--stack'], /--stack needs a value/],
    [['--stack', 'dev', '--verbose'], /unknown argument "--verbose"/],
    [['--readme', '--stack', 'dev'], /--readme takes no other flag/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseFlags(argv)).toThrow(message);
  });

  it('prints violations with level, URN and message', async () => {
    const report = await evaluate({ stack: 'dev', resources: [unencrypted()] }, { policies: [policyNamed('aws-rds-instance-multi-az')] });
    const text = renderReport(report);
    expect(text).toMatch(/aws-rds-instance-multi-az\s+advisory\s+1\s+1/);
    expect(text).toContain("[advisory] aws-rds-instance-multi-az\n    urn:pulumi:test::platform-kit::aws:rds/instance:Instance::db\n    Instance 'db' is not Multi-AZ.");
    expect(text).toMatch(/0 mandatory, 1 advisory violation\(s\)\.$/);
  });
});
