/**
 * A file job whose file goes while it waits, through the real runner, PostgreSQL and Redis:
 * it fails once, saying the file is not found, rather than spend its attempts on a read
 * that cannot succeed.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { createEngineFixture, finished, submission, uploadFile, type EngineFixture } from './fixture';

describe('job engine: a file job whose file is gone', () => {
  let fx: EngineFixture;

  beforeAll(async () => {
    fx = await createEngineFixture();
    await fx.startRunner();
  });
  afterAll(async () => {
    await fx?.close();
  });

  it('fails on its first attempt with "not found" when the file\'s bytes went after its row was read', async () => {
    const file = await uploadFile(fx, 'gone.txt', 'text/plain', 'soon gone');
    // What a concurrent delete leaves a run that has read the row: the bytes go after the row's delete commits.
    await rm(path.join(fx.objectDir, 'files', fx.ownerId, file.id));
    const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'file.checksum', input: { fileId: file.id } }));
    const done = await finished(fx, job.id);
    expect({ status: done.status, attempts: done.attempts, error: done.error }).toEqual({ status: 'failed', attempts: 1, error: `file ${file.id} not found` });
  });
});
