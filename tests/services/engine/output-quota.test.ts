/**
 * A job's output file counts against its owner's storage quota (QUOTA_STORED_BYTES,
 * QUOTA_FILES) as an upload does, through the real runner, PostgreSQL and Redis: a job whose
 * output would pass it fails for good, naming the quota, and stores nothing. Otherwise a
 * user at the quota could fill the object store without bound, one file.compress at a time.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { fileCompress } from '../../../services/contract';
import { createEngineFixture, finished, submission, type EngineFixture } from './fixture';

const FILE_BYTES = 64 * 1024;

describe('job engine: job outputs within the owner\'s storage quota', () => {
  let fx: EngineFixture;

  beforeAll(async () => {
    // Room for the upload and one incompressible gzip copy of it, not two.
    fx = await createEngineFixture({ env: { QUOTA_STORED_BYTES: String(FILE_BYTES * 2 + 1_024), QUOTA_FILES: '10' } });
  });
  afterAll(async () => {
    await fx?.close();
  });

  it('fails a job whose output would pass the quota, without retrying it or storing its output', async () => {
    const file = await fx.core.files.upload({ ownerId: fx.ownerId, name: 'noise.bin', contentType: 'application/octet-stream', body: Readable.from([randomBytes(FILE_BYTES)]), maxBytes: FILE_BYTES });
    await fx.startRunner();
    const compress = async () => {
      const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: fileCompress.type, input: { fileId: file.id, format: 'gzip' } }));
      return finished(fx, job.id);
    };
    const fits = await compress();
    expect(fits).toMatchObject({ status: 'succeeded', attempts: 1 });
    const over = await compress();
    expect(over).toMatchObject({ status: 'failed', attempts: 1, resultFileId: null });
    expect(over.error).toMatch(/storage quota/);
    const stored = await fx.query<{ files: number }>('SELECT count(*)::int AS files FROM files WHERE owner_id = $1', [fx.ownerId]);
    expect(stored).toEqual([{ files: 2 }]);
  });
});
