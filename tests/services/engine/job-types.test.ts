import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { JOB_TYPES } from '../../../services/contract';
import { createEngineFixture, finished, submission, uploadFile, type EngineFixture } from './fixture';

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('job engine: every built-in type end to end through the worker', () => {
  let fx: EngineFixture;

  beforeAll(async () => {
    fx = await createEngineFixture();
    await fx.startRunner();
  });
  afterAll(async () => {
    await fx?.close();
  });

  it('runs echo, sleep, file.checksum, file.compress, text.stats, csv.summary and email.send on real files', async () => {
    const text = 'the quick brown fox\njumps over the lazy dog\nthe end\n';
    const csv = 'name,age\nada,36\nalan,41\ngrace,\n';
    const textFile = await uploadFile(fx, 'fox.txt', 'text/plain', text);
    const csvFile = await uploadFile(fx, 'people.csv', 'text/csv', csv);

    const submit = (type: string, input: unknown) => fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type, input }));
    const submitted = {
      echo: await submit('echo', { payload: { nested: [1, 'two', null] } }),
      sleep: await submit('sleep', { ms: 50 }),
      checksum: await submit('file.checksum', { fileId: textFile.id }),
      md5: await submit('file.checksum', { fileId: textFile.id, algorithm: 'md5' }),
      compress: await submit('file.compress', { fileId: textFile.id }),
      stats: await submit('text.stats', { fileId: textFile.id }),
      summary: await submit('csv.summary', { fileId: csvFile.id }),
      manifest: await submit('files.checksum', { fileIds: [textFile.id, csvFile.id] }),
      batch: await submit('echo.batch', { count: 3 }),
      email: await fx.core.jobs.submitInternal({ ownerId: fx.ownerId, type: 'email.send', input: { to: 'ada@example.test', subject: 'Hello', text: 'Hi Ada' } }),
    };
    const covered = new Set(Object.values(submitted).map((result) => result.job.type));
    expect([...covered].sort()).toEqual(Object.keys(JOB_TYPES).sort());

    const done = Object.fromEntries(
      await Promise.all(
        Object.entries(submitted).map(async ([name, { job }]) => {
          const view = await finished(fx, job.id);
          return [name, view] as const;
        }),
      ),
    );
    for (const [name, view] of Object.entries(done)) expect({ name, status: view.status, error: view.error }).toEqual({ name, status: 'succeeded', error: null });

    expect(done.echo?.result).toEqual({ payload: { nested: [1, 'two', null] } });
    expect(done.sleep?.result).toEqual({ sleptMs: 50 });
    expect(done.checksum?.result).toEqual({ algorithm: 'sha256', digest: createHash('sha256').update(text).digest('hex') });
    expect(done.manifest?.result).toMatchObject({ algorithm: 'sha256', files: 2, succeeded: 2, failed: 0 });
    expect(done.batch?.result).toEqual({ tasks: 3, succeeded: 3, failed: 0 });
    expect(done.md5?.result).toEqual({ algorithm: 'md5', digest: createHash('md5').update(text).digest('hex') });
    expect(done.stats?.result).toMatchObject({ bytes: Buffer.byteLength(text), lines: 3, words: 11, topWords: expect.arrayContaining([{ word: 'the', count: 3 }]) });
    expect(done.summary?.result).toMatchObject({
      rows: 3,
      columns: [
        { name: 'name', count: 3, empty: 0 },
        { name: 'age', count: 2, empty: 1, numeric: { min: 36, max: 41 } },
      ],
    });

    const compressed = done.compress;
    expect(compressed?.resultFileId).toEqual(expect.any(String));
    const output = await fx.core.files.openContent(fx.ownerId, compressed?.resultFileId as string);
    expect(gunzipSync(await readAll(output.body)).toString()).toBe(text);

    expect(done.email?.result).toEqual({ messageId: expect.any(String) });
    expect(await readdir(path.join(fx.objectDir, 'mail'))).toHaveLength(1);
  });
});
