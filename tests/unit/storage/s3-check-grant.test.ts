/**
 * The S3 store's check (doctor's `object-store`, in an api pod) must be a request the
 * workloads' IRSA policy allows: the listing it sends, against the ListBucket grant that
 * platform/identity writes for a bucket the workload reads. HeadBucket, which it sent
 * before, is not covered by a grant conditioned on s3:prefix.
 */
import { workloadPolicyStatements } from '../../../platform/identity';
import { S3ObjectStore } from '../../../services/core/storage/s3';
import { startFakeS3, type FakeS3Server } from './fake-s3-server';

/** IAM's StringLike: `*` any run of characters, `?` one. */
function stringLike(pattern: string, value: string): boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`).test(value);
}

describe('the S3 check against the workloads\' grants', () => {
  let s3: FakeS3Server;
  beforeAll(async () => {
    s3 = await startFakeS3(['uploads']);
  });
  afterAll(() => s3.close());

  it('lists under the prefix the ListBucket grant allows', async () => {
    const prefix = 'files/';
    const statements = workloadPolicyStatements({ uploads: 'arn:aws:s3:::uploads' }, { uploads: ['read'] }, prefix, 'arn:aws:kms:eu-west-1:111122223333:key/k', 'eu-west-1');
    const list = statements.find((statement) => ([] as string[]).concat(statement.Action).includes('s3:ListBucket'));
    const allowed = (list?.Condition as { StringLike?: Record<string, string> } | undefined)?.StringLike?.['s3:prefix'];
    expect(allowed).toBeDefined();

    const store = new S3ObjectStore({
      bucket: 'uploads',
      prefix,
      region: 'eu-west-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-for-signing-only' },
    });
    try {
      await store.check();
      const request = s3.requests.at(-1)!;
      // A listing of the bucket (ListObjectsV2 is authorised as s3:ListBucket) with a prefix the condition admits.
      expect(request.method).toBe('GET');
      expect(request.query.get('list-type')).toBe('2');
      expect(stringLike(allowed as string, request.query.get('prefix') ?? '')).toBe(true);
    } finally {
      store.client.destroy();
    }
  });
});
