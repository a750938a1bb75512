import { MONITORING } from '../../services/contract';
import { captureStack } from '../../tools/offline/capture';
import type { CapturedStack } from '../../tools/offline/types';
import { one } from '../infra/graph';
import { describeObservability, release, valuesOf, type Inputs } from './stack';

let stack: CapturedStack;
beforeAll(async () => {
  stack = await captureStack('prod');
});

const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : [v as string]);

describe('prod observability (under mocks)', () => {
  describeObservability(() => stack, 'prod');

  it('stores Loki in the loki-chunks bucket through an IRSA role with exactly the compactor\'s rights', () => {
    const v = valuesOf(release(stack, 'loki'));
    const bucket = String(stack.outputs.lokiChunksBucket);
    expect((v.loki as Inputs).storage).toEqual({ type: 's3', bucketNames: { chunks: bucket, ruler: bucket }, s3: { region: 'eu-west-1' } });
    expect((v.loki as Inputs).compactor).toMatchObject({ retention_enabled: true, delete_request_store: 's3' });
    expect(v.singleBinary).toMatchObject({ replicas: 2 });
    const role = one(stack, 'aws:iam/role:Role', 'observability-loki');
    const trust = JSON.parse(String(role.inputs.assumeRolePolicy)) as { Statement: { Condition: { StringEquals: Record<string, string> } }[] };
    expect(Object.values(trust.Statement[0]?.Condition.StringEquals ?? {})).toContain(`system:serviceaccount:${MONITORING.namespace}:loki`);
    expect((v.serviceAccount as Inputs).annotations).toEqual({ 'eks.amazonaws.com/role-arn': expect.stringMatching(/:role\/observability-loki/) });
    const policy = JSON.parse(String(one(stack, 'aws:iam/rolePolicy:RolePolicy', 'observability-loki-policy').inputs.policy)) as { Statement: { Action: string | string[]; Resource: string; Condition?: unknown }[] };
    const grants = Object.fromEntries(policy.Statement.map((s) => [s.Resource, list(s.Action).sort()]));
    // The one key the buckets encrypt with.
    expect(one(stack, 'aws:iam/rolePolicy:RolePolicy', 'observability-loki-policy').propertyDependencies?.policy).toContain(one(stack, 'aws:kms/key:Key', 'storage-key').urn);
    const storageKey = policy.Statement.find((s) => s.Resource.startsWith('arn:aws:kms:'))?.Resource;
    expect(grants).toEqual({
      [`arn:aws:s3:::${bucket}`]: ['s3:ListBucket'],
      [`arn:aws:s3:::${bucket}/*`]: ['s3:DeleteObject', 's3:GetObject', 's3:PutObject'],
      [storageKey as string]: ['kms:Decrypt', 'kms:GenerateDataKey'],
    });
    expect(policy.Statement.find((s) => s.Resource === storageKey)?.Condition).toEqual({ StringEquals: { 'kms:ViaService': 's3.eu-west-1.amazonaws.com' } });
  });

  it('keeps logs no longer than the bucket keeps chunks', () => {
    const retentionHours = Number(String(((valuesOf(release(stack, 'loki')).loki as Inputs).limits_config as Inputs).retention_period).replace('h', ''));
    const lifecycle = stack.resources.find((r) => r.name === 'storage-loki-chunks-lifecycle');
    const expireDays = ((lifecycle?.inputs.rules as Inputs[]).find((r) => r.id === 'expire-current')?.expiration as Inputs).days as number;
    expect(retentionHours / 24).toBeLessThanOrEqual(expireDays);
  });

  it('runs Prometheus and Alertmanager highly available, with disruption budgets', () => {
    const v = valuesOf(release(stack, 'kube-prometheus-stack'));
    expect(v.prometheus).toMatchObject({ podDisruptionBudget: { enabled: true }, prometheusSpec: { replicas: 2, podAntiAffinity: 'hard' } });
    expect(v.alertmanager).toMatchObject({ podDisruptionBudget: { enabled: true }, alertmanagerSpec: { replicas: 3 } });
  });
});
