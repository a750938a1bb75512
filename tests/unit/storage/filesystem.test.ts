import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { FilesystemObjectStore } from '../../../services/core/storage/filesystem';
import { InvalidObjectKeyError, ObjectNotFoundError, ObjectTooLargeError } from '../../../services/core/storage/object-store';

/** Every file under a directory, relative paths, temp files included. */
async function listFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => path.relative(root, path.join(entry.parentPath, entry.name))).sort();
}

/** Every directory under a directory, relative paths. */
async function listDirectories(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isDirectory()).map((entry) => path.relative(root, path.join(entry.parentPath, entry.name))).sort();
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A body that sends `first`, then waits until released (or destroyed), then sends `rest`. */
function stalledBody(first: Buffer, rest: Buffer): { body: Readable; release(): void; firstChunkRead: Promise<void> } {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let markRead!: () => void;
  const firstChunkRead = new Promise<void>((resolve) => (markRead = resolve));
  const body = Readable.from(
    (async function* () {
      yield first;
      markRead();
      await released;
      yield rest;
    })(),
  );
  return { body, release, firstChunkRead };
}

describe('FilesystemObjectStore', () => {
  let root: string;
  let store: FilesystemObjectStore;

  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'pk-fs-store-'));
    store = new FilesystemObjectStore({ root });
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('keeps objects readable by their owner only (files 0600, directories 0700)', async () => {
    await store.put('files/owner/private', Buffer.from('secret bytes'));
    expect((await stat(path.join(root, 'files', 'owner', 'private'))).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(root, 'files', 'owner'))).mode & 0o777).toBe(0o700);
  });

  it('round-trips a buffer and reports its size and SHA-256', async () => {
    const data = randomBytes(100_000);
    const stored = await store.put('files/owner/one', data, { contentType: 'application/octet-stream' });
    expect(stored).toEqual({ key: 'files/owner/one', size: data.length, sha256: sha256(data) });
    const read = Buffer.concat(await (await store.get('files/owner/one')).toArray());
    expect(read.equals(data)).toBe(true);
    expect(await store.head('files/owner/one')).toEqual({ size: data.length });
    expect(await listFiles(root)).toEqual(['files/owner/one']);
  });

  it('streams a multi-chunk body and overwrites an existing key', async () => {
    const chunks = Array.from({ length: 50 }, () => randomBytes(10_000));
    await store.put('k', Buffer.from('old'));
    const stored = await store.put('k', Readable.from(chunks));
    const all = Buffer.concat(chunks);
    expect(stored.size).toBe(all.length);
    expect(stored.sha256).toBe(sha256(all));
    expect((await readFile(path.join(root, 'k'))).equals(all)).toBe(true);
  });

  it('stores an empty object', async () => {
    const stored = await store.put('empty', Buffer.alloc(0));
    expect(stored).toEqual({ key: 'empty', size: 0, sha256: sha256(Buffer.alloc(0)) });
    expect(await text(await store.get('empty'))).toBe('');
  });

  it('accepts a body exactly at maxBytes', async () => {
    const stored = await store.put('exact', Buffer.alloc(10, 1), { maxBytes: 10 });
    expect(stored.size).toBe(10);
  });

  it('rejects an over-limit body mid-stream and keeps the previous object intact', async () => {
    await store.put('doc', Buffer.from('previous version'));
    let produced = 0;
    const endless = new Readable({
      read() {
        produced += 1_000;
        this.push(Buffer.alloc(1_000, 0x61));
      },
    });
    await expect(store.put('doc', endless, { maxBytes: 5_000 })).rejects.toBeInstanceOf(ObjectTooLargeError);
    // Cut off near the limit, not read to the end (this body has no end).
    expect(produced).toBeLessThan(100_000);
    expect(await text(await store.get('doc'))).toBe('previous version');
    expect(await listFiles(root)).toEqual(['doc']);
  });

  it('leaves nothing behind when a new key goes over the limit, not even its directory', async () => {
    await expect(store.put('fresh/key', Buffer.alloc(20), { maxBytes: 19 })).rejects.toBeInstanceOf(ObjectTooLargeError);
    expect(await store.head('fresh/key')).toBeUndefined();
    expect(await listFiles(root)).toEqual([]);
    expect(await listDirectories(root)).toEqual([]);
  });

  it('never exposes a half-written object, and an aborted write leaves no file', async () => {
    const controller = new AbortController();
    const { body, firstChunkRead } = stalledBody(Buffer.alloc(64 * 1024, 1), Buffer.alloc(10, 2));
    const writing = store.put('big/object', body, { signal: controller.signal });
    await firstChunkRead;
    // Half the bytes are on disk in a temp file; the key still does not exist for readers.
    expect(await store.head('big/object')).toBeUndefined();
    await expect(store.get('big/object')).rejects.toBeInstanceOf(ObjectNotFoundError);
    controller.abort();
    await expect(writing).rejects.toMatchObject({ name: 'AbortError' });
    expect(await store.head('big/object')).toBeUndefined();
    expect(await listFiles(root)).toEqual([]);
  });

  it('rejects a write whose signal is already aborted without creating anything', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(store.put('never', Buffer.from('x'), { signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
    expect(await listFiles(root)).toEqual([]);
  });

  it('fails a write when its body errors, leaving no partial file', async () => {
    const failing = Readable.from(
      (async function* () {
        yield Buffer.from('partial');
        throw new Error('client went away');
      })(),
    );
    await expect(store.put('broken', failing)).rejects.toThrow('client went away');
    expect(await listFiles(root)).toEqual([]);
  });

  it.each([
    '../escape',
    '/etc/passwd',
    'a/../../b',
    'a/./b',
    'a//b',
    'trailing/',
    '',
    '..',
    'with space',
    'back\\slash',
    'tilde~temp',
    'ünicode',
    'nul\u0000byte',
    `${'x'.repeat(201)}`,
  ])('rejects the invalid key %j in every operation', async (key) => {
    await expect(store.put(key, Buffer.from('x'))).rejects.toBeInstanceOf(InvalidObjectKeyError);
    await expect(store.get(key)).rejects.toBeInstanceOf(InvalidObjectKeyError);
    await expect(store.head(key)).rejects.toBeInstanceOf(InvalidObjectKeyError);
    await expect(store.delete(key)).rejects.toBeInstanceOf(InvalidObjectKeyError);
    expect(await listFiles(root)).toEqual([]);
  });

  it.each(['files/1f0e/abc.txt', '.hidden', 'outbox/3b8d-4c.eml', 'A-Z_a-z.0-9'])('accepts the valid key %j', async (key) => {
    await store.put(key, Buffer.from('ok'));
    expect(await store.head(key)).toEqual({ size: 2 });
  });

  it('reports missing objects: get rejects, head is undefined, delete is a no-op', async () => {
    await expect(store.get('missing/object')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(store.get('missing/object')).rejects.toMatchObject({ key: 'missing/object' });
    expect(await store.head('missing/object')).toBeUndefined();
    await expect(store.delete('missing/object')).resolves.toBeUndefined();
  });

  it('treats a key prefix (a directory) as not found', async () => {
    await store.put('prefix/child', Buffer.from('x'));
    await expect(store.get('prefix')).rejects.toBeInstanceOf(ObjectNotFoundError);
    expect(await store.head('prefix')).toBeUndefined();
    // A key below an existing object cannot be found either (the path component is a file).
    await expect(store.get('prefix/child/grandchild')).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('deletes an object', async () => {
    await store.put('gone', Buffer.from('x'));
    await store.delete('gone');
    expect(await store.head('gone')).toBeUndefined();
  });

  it('removes the directories a delete leaves empty, so a directory per job output does not outlive its file', async () => {
    await store.put('files/owner/kept', Buffer.from('k'));
    for (let job = 0; job < 200; job += 1) {
      await store.put(`outputs/job-${job}/result.gz`, Buffer.from('x'));
      await store.delete(`outputs/job-${job}/result.gz`);
    }
    await store.put('files/owner/gone', Buffer.from('g'));
    await store.delete('files/owner/gone');
    // What is left is what holds an object: none of the 200 job directories, nor `outputs` itself.
    expect(await listDirectories(root)).toEqual(['files', 'files/owner']);
    expect(await listFiles(root)).toEqual(['files/owner/kept']);
    await store.delete('files/owner/kept');
    expect(await listDirectories(root)).toEqual([]);
  });

  it('writes into a directory that a delete of its last object removes at the same time', async () => {
    for (let round = 0; round < 100; round += 1) {
      await store.put(`race/${round}/a`, Buffer.from('a'));
      await Promise.all([store.delete(`race/${round}/a`), store.put(`race/${round}/b`, Buffer.from('b'))]);
      expect(await store.head(`race/${round}/b`)).toEqual({ size: 1 });
    }
    expect(await listFiles(root)).toHaveLength(100);
  });

  it('aborts a read when its signal fires', async () => {
    await store.put('read/me', randomBytes(1024 * 1024));
    const controller = new AbortController();
    const body = await store.get('read/me', { signal: controller.signal });
    controller.abort();
    await expect(body.toArray()).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('passes its check and leaves no probe behind', async () => {
    await store.check();
    expect(await listFiles(root)).toEqual([]);
  });
});
