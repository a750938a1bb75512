import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Pool } from 'pg';
import { createGeneralPool } from '../../services/core/db/pool';
import { runMigrations } from '../../services/core/db/migrate';
import { NotFoundError, PayloadTooLargeError, QuotaExceededError, ValidationError } from '../../services/core/errors';
import { createFileService } from '../../services/core/files/service';
import type { FileService } from '../../services/core/files/types';
import { createLogger } from '../../services/core/logger';
import { FilesystemObjectStore } from '../../services/core/storage/filesystem';
import { useSharedServices } from '../harness/shared';

const MiB = 1024 * 1024;

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Every object in the store, as relative paths (temp files included). */
async function listObjects(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => path.relative(root, path.join(entry.parentPath, entry.name))).sort();
}

describe('FileService on PostgreSQL and the filesystem store', () => {
  let pool: Pool;
  let root: string;
  let files: FileService;
  let ada: string;
  let bob: string;

  async function insertUser(email: string): Promise<string> {
    const id = randomUUID();
    await pool.query('INSERT INTO users (id, email, password_hash) VALUES ($1, $2, $3)', [id, email, 'not-a-real-hash']);
    return id;
  }

  async function fileRowCount(): Promise<number> {
    return (await pool.query<{ count: number }>('SELECT count(*)::int AS count FROM files')).rows[0]?.count ?? -1;
  }

  beforeAll(async () => {
    const { databaseUrl } = await useSharedServices();
    await runMigrations(databaseUrl);
    pool = createGeneralPool({ DATABASE_URL: databaseUrl, DATABASE_POOL_MAX: 4, DATABASE_SSL: 'disable' });
    ada = await insertUser('ada@example.com');
    bob = await insertUser('bob@example.com');
  });

  afterAll(async () => {
    await pool.end();
  });

  beforeEach(async () => {
    await pool.query('DELETE FROM files');
    root = await mkdtemp(path.join(os.tmpdir(), 'pk-files-'));
    files = createFileService({ generalPool: pool, store: new FilesystemObjectStore({ root }), log: createLogger({ service: 'files-test', level: 'silent' }), quota: { files: 10_000, bytes: 10 * 1024 * MiB } });
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('uploads a file, then returns its metadata and its bytes to the owner', async () => {
    const data = randomBytes(2 * MiB + 3);
    const view = await files.upload({ ownerId: ada, name: 'report.bin', contentType: 'Application/Octet-Stream', body: Readable.from([data]), maxBytes: 25 * MiB });

    expect(view).toEqual({
      id: expect.any(String),
      name: 'report.bin',
      size: data.length,
      contentType: 'application/octet-stream',
      sha256: sha256(data),
      createdAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
    });
    expect(await files.get(ada, view.id)).toEqual(view);
    const { file, body } = await files.openContent(ada, view.id);
    expect(file).toEqual(view);
    expect(Buffer.concat(await body.toArray()).equals(data)).toBe(true);
    expect(await listObjects(root)).toEqual([`files/${ada}/${view.id}`]);
  });

  it('sanitises the file name and keeps content-type parameters', async () => {
    const view = await files.upload({
      ownerId: ada,
      name: `../../etc/\u202Epasswd\u0000 ${'x'.repeat(300)}.txt`,
      contentType: 'text/plain; charset=utf-8',
      body: Readable.from([Buffer.from('hi')]),
      maxBytes: 1_000,
    });
    for (const unsafe of ['/', '\\', '\u0000', '\u202E']) expect(view.name).not.toContain(unsafe);
    expect(view.name.startsWith('passwd x')).toBe(true);
    expect(view.name.endsWith('.txt')).toBe(true);
    expect(view.name).toHaveLength(255);
    expect(view.contentType).toBe('text/plain; charset=utf-8');
  });

  it('rejects a malformed content type before storing anything', async () => {
    await expect(
      files.upload({ ownerId: ada, name: 'a', contentType: 'not a type', body: Readable.from([Buffer.from('x')]), maxBytes: 10 }),
    ).rejects.toBeInstanceOf(ValidationError);
    expect(await fileRowCount()).toBe(0);
    expect(await listObjects(root)).toEqual([]);
  });

  it("answers NotFoundError for another owner's file, an unknown id and a malformed id", async () => {
    const view = await files.upload({ ownerId: ada, name: 'secret.txt', contentType: 'text/plain', body: Readable.from([Buffer.from('s')]), maxBytes: 10 });
    await expect(files.get(bob, view.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(files.openContent(bob, view.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(files.get(ada, randomUUID())).rejects.toBeInstanceOf(NotFoundError);
    await expect(files.get(ada, 'not-a-uuid')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('stores nothing for an over-limit upload: no row, no object, and the caller’s stream is not destroyed', async () => {
    // Like a request body still arriving: it does not end.
    const body = new Readable({
      read() {
        this.push(randomBytes(64 * 1024));
      },
    });
    await expect(files.upload({ ownerId: ada, name: 'big.bin', contentType: 'application/octet-stream', body, maxBytes: MiB })).rejects.toBeInstanceOf(
      PayloadTooLargeError,
    );
    expect(await fileRowCount()).toBe(0);
    expect(await listObjects(root)).toEqual([]);
    // Destroying an HTTP request body would reset the connection before the API can answer 413.
    expect(body.destroyed).toBe(false);
    body.destroy();
  });

  it('stores nothing when the body fails mid-upload', async () => {
    const body = Readable.from(
      (async function* () {
        yield Buffer.from('first part');
        throw new Error('connection reset');
      })(),
    );
    await expect(files.upload({ ownerId: ada, name: 'cut.bin', contentType: 'application/octet-stream', body, maxBytes: MiB })).rejects.toThrow('connection reset');
    expect(await fileRowCount()).toBe(0);
    expect(await listObjects(root)).toEqual([]);
  });

  it('deletes the object when the row cannot be inserted', async () => {
    const unknownOwner = randomUUID();
    await expect(
      files.upload({ ownerId: unknownOwner, name: 'orphan', contentType: 'text/plain', body: Readable.from([Buffer.from('x')]), maxBytes: 10 }),
    ).rejects.toMatchObject({ code: '23503' });
    expect(await listObjects(root)).toEqual([]);
  });

  it('saves a job output once however many times the job runs', async () => {
    const jobId = randomUUID();
    const first = await files.saveJobOutput({ jobId, ownerId: ada, name: 'data.csv.gz', contentType: 'application/gzip', body: Readable.from([Buffer.from('run 1')]) });
    const second = await files.saveJobOutput({ jobId, ownerId: ada, name: 'data.csv.gz', contentType: 'application/gzip', body: Readable.from([Buffer.from('run two')]) });

    expect(second.id).toBe(first.id);
    expect(second).toMatchObject({ name: 'data.csv.gz', size: 7, sha256: sha256(Buffer.from('run two')) });
    expect((await pool.query('SELECT id FROM files WHERE produced_by_job_id = $1', [jobId])).rows).toEqual([{ id: first.id }]);
    expect(await listObjects(root)).toEqual([`outputs/${jobId}/data.csv.gz`]);
    const { body } = await files.openContent(ada, first.id);
    expect(Buffer.concat(await body.toArray()).toString()).toBe('run two');
  });

  it('moves a re-run output saved under another name and removes the old object', async () => {
    const jobId = randomUUID();
    const first = await files.saveJobOutput({ jobId, ownerId: ada, name: 'old name.txt', contentType: 'text/plain', body: Readable.from([Buffer.from('a')]) });
    const second = await files.saveJobOutput({ jobId, ownerId: ada, name: 'new.txt', contentType: 'text/plain', body: Readable.from([Buffer.from('b')]) });
    expect(second.id).toBe(first.id);
    expect(second.name).toBe('new.txt');
    expect(await listObjects(root)).toEqual([`outputs/${jobId}/new.txt`]);
  });

  it('holds job outputs to the owner\'s quota of files and bytes, as uploads are; a re-run\'s earlier output is not counted against it', async () => {
    const limited = createFileService({ generalPool: pool, store: new FilesystemObjectStore({ root }), log: createLogger({ service: 'files-test', level: 'silent' }), quota: { files: 2, bytes: 10 } });
    const save = (jobId: string, text: string) => limited.saveJobOutput({ jobId, ownerId: ada, name: 'out.txt', contentType: 'text/plain', body: Readable.from([Buffer.from(text)]) });
    const first = randomUUID();
    await save(first, '123456');
    await save(first, '12345678');
    await expect(save(randomUUID(), '123')).rejects.toBeInstanceOf(QuotaExceededError);
    const second = randomUUID();
    await save(second, '12');
    await expect(save(randomUUID(), '')).rejects.toBeInstanceOf(QuotaExceededError);
    const { rows } = await pool.query<{ produced_by_job_id: string; size: number }>('SELECT produced_by_job_id, size FROM files WHERE owner_id = $1 ORDER BY size DESC', [ada]);
    expect(rows).toEqual([
      { produced_by_job_id: first, size: 8 },
      { produced_by_job_id: second, size: 2 },
    ]);
    expect((await listObjects(root)).sort()).toEqual([`outputs/${first}/out.txt`, `outputs/${second}/out.txt`].sort());
  });

  it('asserts ownership of every file a job names', async () => {
    const mine = await files.upload({ ownerId: ada, name: 'a', contentType: 'text/plain', body: Readable.from([Buffer.from('a')]), maxBytes: 10 });
    const theirs = await files.upload({ ownerId: bob, name: 'b', contentType: 'text/plain', body: Readable.from([Buffer.from('b')]), maxBytes: 10 });

    await expect(files.assertOwned(ada, [])).resolves.toBeUndefined();
    await expect(files.assertOwned(ada, [{ field: 'input.fileId', fileId: mine.id }])).resolves.toBeUndefined();
    await expect(files.assertOwned(ada, [{ field: 'input.fileId', fileId: mine.id.toUpperCase() }])).resolves.toBeUndefined();

    const error = await files
      .assertOwned(ada, [
        { field: 'input.fileId', fileId: mine.id },
        { field: 'input.otherId', fileId: theirs.id },
        { field: 'input.badId', fileId: 'nope' },
      ])
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as Error).message).toContain('input.otherId');
    expect((error as Error).message).toContain('input.badId');
    expect((error as Error).message).not.toContain('input.fileId');
  });
});
