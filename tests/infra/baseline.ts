/**
 * The AWS Foundational Security Best Practices items and the data-lifecycle choices both
 * stacks must show in their captured graph (S3 access logs, default security group, key
 * rotation, log groups, flow logs, RDS versions, teardown). Each stack's test file calls
 * `describeBaseline`.
 */
import { EXPORTED_LOGS } from '../../platform/database';
import type { StackConfig } from '../../platform/config';
import type { CapturedResource, CapturedStack } from '../../tools/offline/types';
import { type Inputs, attachedTo, ofType, one, parsePolicy, waitsFor } from './graph';

const BUCKET = 'aws:s3/bucket:Bucket';
const LOG_GROUP = 'aws:cloudwatch/logGroup:LogGroup';

function archive(s: CapturedStack): CapturedResource {
  return one(s, BUCKET, 'log-archive-bucket');
}

function companion(s: CapturedStack, type: string, bucket: CapturedResource): Inputs {
  const found = attachedTo(s, type, 'bucket', bucket);
  if (found.length !== 1) throw new Error(`${bucket.name}: expected one ${type}, found ${found.length}`);
  return (found[0] as CapturedResource).inputs;
}

export function describeBaseline(get: () => CapturedStack, cfg: () => StackConfig): void {
  describe('S3 server access logs (S3.9)', () => {
    it('logs every bucket but the archive into the archive, one prefix per bucket, once the archive admits the deliveries', () => {
      const s = get();
      const logArchive = archive(s);
      const policy = one(s, 'aws:s3/bucketPolicy:BucketPolicy', 'log-archive-policy');
      const logged = ofType(s, BUCKET).filter((b) => b !== logArchive);
      expect(logged.length).toBe(3);
      for (const bucket of logged) {
        const logging = attachedTo(s, 'aws:s3/bucketLogging:BucketLogging', 'bucket', bucket);
        expect(logging).toHaveLength(1);
        const l = logging[0] as CapturedResource;
        expect(l.inputs).toMatchObject({ targetBucket: s.outputs.logArchiveBucket, targetPrefix: `s3-access/${bucket.name.replace(/^storage-/, '')}/` });
        expect(l.propertyDependencies?.targetBucket).toEqual([logArchive.urn]);
        expect(waitsFor(s, l, policy)).toBe(true);
      }
      expect(attachedTo(s, 'aws:s3/bucketLogging:BucketLogging', 'bucket', logArchive)).toEqual([]);
    });

    it('keeps the archive private, SSE-S3 encrypted (the only kind access logging delivers to), versioned, TLS-only, with its own lifecycle', () => {
      const s = get();
      const a = archive(s);
      expect(companion(s, 'aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock', a)).toMatchObject({ blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true });
      expect(companion(s, 'aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration', a).rules).toEqual([{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'AES256' } }]);
      expect(companion(s, 'aws:s3/bucketVersioning:BucketVersioning', a)).toMatchObject({ versioningConfiguration: { status: 'Enabled' } });
      const rules = companion(s, 'aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration', a).rules as { id: string; filter: { prefix: string }; expiration?: { days?: number } }[];
      const expiry = Object.fromEntries(rules.filter((r) => r.expiration?.days !== undefined).map((r) => [r.filter.prefix, r.expiration?.days]));
      const { flowLogs } = cfg().network;
      expect(expiry).toEqual({ 's3-access/': cfg().logArchive.accessLogRetentionDays, ...(flowLogs.destination === 's3' ? { 'vpc-flow-logs/': flowLogs.retentionDays } : {}) });
      const statements = parsePolicy(companion(s, 'aws:s3/bucketPolicy:BucketPolicy', a).policy).Statement;
      expect(statements).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ Effect: 'Deny', Principal: '*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          expect.objectContaining({ Effect: 'Allow', Principal: { Service: 'logging.s3.amazonaws.com' }, Action: 's3:PutObject', Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' } } }),
        ]),
      );
    });
  });

  it('empties the VPC\'s default security group of every rule (EC2.2)', () => {
    const s = get();
    const sg = one(s, 'aws:ec2/defaultSecurityGroup:DefaultSecurityGroup');
    expect(sg.inputs).toEqual({ vpcId: s.outputs.vpcId, ingress: [], egress: [] });
    expect(sg.propertyDependencies?.vpcId).toEqual([one(s, 'awsx:ec2:Vpc').urn]);
  });

  it('rotates every KMS key (KMS.4)', () => {
    const keys = ofType(get(), 'aws:kms/key:Key');
    expect(keys.length).toBeGreaterThan(3);
    for (const k of keys) expect({ key: k.name, rotates: k.inputs.enableKeyRotation }).toEqual({ key: k.name, rotates: true });
  });

  describe('CloudWatch log groups', () => {
    it('encrypts every log group with a KMS key and gives it a retention', () => {
      const groups = ofType(get(), LOG_GROUP);
      for (const g of groups) expect(g.inputs).toMatchObject({ kmsKeyId: expect.stringMatching(/^arn:aws:kms:/), retentionInDays: expect.any(Number) });
    });

    it('declares the log groups RDS exports into before the instance exists, so RDS never creates them bare', () => {
      const s = get();
      const db = one(s, 'aws:rds/instance:Instance');
      const id = String(db.inputs.identifier);
      expect(id).toBe(`platform-kit-${s.stack}-database`);
      expect(db.inputs.enabledCloudwatchLogsExports).toEqual([...EXPORTED_LOGS]);
      for (const type of EXPORTED_LOGS) {
        const group = ofType(s, LOG_GROUP).find((g) => g.inputs.name === `/aws/rds/instance/${id}/${type}`);
        expect(group).toBeDefined();
        expect(group?.inputs.retentionInDays).toBe(cfg().database.logRetentionDays);
        expect(db.dependencies).toContain(group?.urn);
      }
    });
  });

  it('sends flow logs of all traffic where and at the grain the stack file says, after the archive admits them', () => {
    const s = get();
    const { flowLogs } = cfg().network;
    const flowLog = one(s, 'aws:ec2/flowLog:FlowLog');
    expect(flowLog.inputs).toMatchObject({ vpcId: s.outputs.vpcId, trafficType: 'ALL', maxAggregationInterval: flowLogs.aggregationSeconds });
    if (flowLogs.destination === 's3') {
      expect(flowLog.inputs).toMatchObject({ logDestinationType: 's3', logDestination: `arn:aws:s3:::${String(s.outputs.logArchiveBucket)}/vpc-flow-logs/` });
      expect(waitsFor(s, flowLog, one(s, 'aws:s3/bucketPolicy:BucketPolicy', 'log-archive-policy'))).toBe(true);
      // No CloudWatch copy unless the stack asks for one.
      expect(ofType(s, LOG_GROUP).filter((g) => g.name === 'network-flow-logs')).toEqual([]);
    } else {
      expect(flowLog.inputs.logDestinationType).toBe('cloud-watch-logs');
    }
  });

  it('pins only the PostgreSQL major version, so an automatic minor upgrade is never undone', () => {
    const db = one(get(), 'aws:rds/instance:Instance');
    expect(db.inputs).toMatchObject({ engineVersion: cfg().database.engineVersion, autoMinorVersionUpgrade: true, allowMajorVersionUpgrade: false });
    expect(String(db.inputs.engineVersion)).toMatch(/^\d+$/);
    expect(one(get(), 'aws:rds/parameterGroup:ParameterGroup').inputs.family).toBe(`postgres${cfg().database.engineVersion}`);
  });

  it('empties buckets and the ECR repository on destroy only where the stack is disposable', () => {
    const s = get();
    const force = cfg().teardown.forceDestroy;
    for (const b of ofType(s, BUCKET)) expect({ bucket: b.name, forceDestroy: b.inputs.forceDestroy }).toEqual({ bucket: b.name, forceDestroy: force });
    expect(one(s, 'aws:ecr/repository:Repository').inputs.forceDelete).toBe(force);
  });
}
