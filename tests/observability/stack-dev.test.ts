import { captureStack } from '../../tools/offline/capture';
import type { CapturedStack } from '../../tools/offline/types';
import { describeObservability, release, valuesOf, type Inputs } from './stack';

let stack: CapturedStack;
beforeAll(async () => {
  stack = await captureStack('dev');
});

describe('dev observability (under mocks)', () => {
  describeObservability(() => stack, 'dev');

  it('keeps Loki as one single binary on its volume, retention enforced by its compactor', () => {
    const v = valuesOf(release(stack, 'loki'));
    expect(v).toMatchObject({ deploymentMode: 'SingleBinary', singleBinary: { replicas: 1, persistence: { enabled: true, storageClass: 'gp3' } }, gateway: { enabled: false } });
    const loki = v.loki as Inputs;
    expect(loki.storage).toEqual({ type: 'filesystem' });
    expect(loki.compactor).toMatchObject({ retention_enabled: true, delete_request_store: 'filesystem' });
    expect(loki.limits_config).toMatchObject({ retention_period: '168h' });
    expect(stack.resources.some((r) => r.type === 'aws:iam/role:Role' && r.name === 'observability-loki')).toBe(false);
  });
});
