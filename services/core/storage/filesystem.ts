import { randomUUID } from 'node:crypto';
import { mkdir, open, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { addAbortSignal, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../logger';
import { assertValidObjectKey } from './object-key';
import { ObjectMeter } from './object-meter';
import { ObjectNotFoundError, type ObjectStore, type PutOptions, type StoredObject } from './object-store';

export interface FilesystemObjectStoreOptions {
  /** Directory holding the objects; created on first write. Relative paths resolve against the working directory. */
  root: string;
  log?: Logger;
}

const MISSING = new Set(['ENOENT', 'ENOTDIR']);

/** Tries at creating a temp file whose directory a concurrent delete removes as empty each time. */
const CREATE_ATTEMPTS = 5;

function isMissing(error: unknown): boolean {
  return MISSING.has((error as NodeJS.ErrnoException).code ?? '');
}

async function writeFully(handle: FileHandle, data: Buffer): Promise<void> {
  for (let offset = 0; offset < data.length; ) {
    const { bytesWritten } = await handle.write(data, offset, data.length - offset);
    offset += bytesWritten;
  }
}

/**
 * Writes into an open file and fsyncs it before finishing, so the data is on disk before
 * the rename makes it visible (otherwise a crash could expose an empty or short file).
 * The handle stays open for the caller to close.
 */
function fileSink(handle: FileHandle): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      writeFully(handle, chunk).then(() => callback(), callback);
    },
    writev(chunks, callback) {
      writeFully(handle, Buffer.concat(chunks.map(({ chunk }) => chunk as Buffer))).then(() => callback(), callback);
    },
    final(callback) {
      handle.sync().then(() => callback(), callback);
    },
  });
}

/**
 * Objects as files under a root directory, one file per key. A write goes to a temp file
 * beside its target, is fsynced and then renamed over it: rename is atomic within a
 * directory, so a reader sees the old object or the new one, never a part, and a crash
 * mid-write leaves only a temp file that no key can name (keys cannot contain `~`).
 */
export class FilesystemObjectStore implements ObjectStore {
  readonly driver = 'filesystem' as const;
  private readonly root: string;
  private readonly log?: Logger;

  constructor(options: FilesystemObjectStoreOptions) {
    this.root = path.resolve(options.root);
    this.log = options.log;
  }

  async put(key: string, body: Readable | Buffer, options: PutOptions = {}): Promise<StoredObject> {
    const target = this.pathOf(key);
    options.signal?.throwIfAborted();
    const directory = path.dirname(target);
    const temp = path.join(directory, `.${path.basename(target)}~${randomUUID()}.partial`);
    const meter = new ObjectMeter(options.maxBytes);
    const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;

    const handle = await this.createInDirectory(temp);
    let handleOpen = true;
    try {
      await pipeline(source, meter, fileSink(handle), options.signal ? { signal: options.signal } : {});
      handleOpen = false;
      await handle.close();
      await rename(temp, target);
    } catch (error) {
      if (handleOpen) await handle.close().catch(() => undefined);
      await rm(temp, { force: true });
      await this.removeEmptyDirectories(directory);
      throw error;
    }
    await this.syncDirectory(directory);
    return { key, size: meter.byteCount, sha256: meter.digest() };
  }

  async get(key: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    const file = this.pathOf(key);
    options.signal?.throwIfAborted();
    let handle: FileHandle;
    try {
      handle = await open(file, 'r');
    } catch (error) {
      if (isMissing(error)) throw new ObjectNotFoundError(key);
      throw error;
    }
    try {
      // A key that names a directory (a prefix of other keys) is not an object.
      if (!(await handle.stat()).isFile()) throw new ObjectNotFoundError(key);
    } catch (error) {
      await handle.close();
      throw error;
    }
    const stream = handle.createReadStream();
    return options.signal ? addAbortSignal(options.signal, stream) : stream;
  }

  async head(key: string): Promise<{ size: number } | undefined> {
    try {
      const info = await stat(this.pathOf(key));
      return info.isFile() ? { size: info.size } : undefined;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    const file = this.pathOf(key);
    try {
      await unlink(file);
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
    await this.removeEmptyDirectories(path.dirname(file));
  }

  async check(): Promise<void> {
    const key = `_check/${randomUUID()}`;
    const probe = Buffer.from('ok');
    await this.put(key, probe);
    try {
      const found = await this.head(key);
      if (found?.size !== probe.length) throw new Error(`object store at ${this.root} did not read back its probe object`);
    } finally {
      await this.delete(key);
    }
  }

  private pathOf(key: string): string {
    assertValidObjectKey(key);
    return path.join(this.root, key);
  }

  /**
   * Creates a temp file, with its directories. A delete of the last object in one of them may
   * remove it as empty (removeEmptyDirectories) before the file is in it: then it is made again.
   */
  private async createInDirectory(temp: string): Promise<FileHandle> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        // Owner-only: uploads are users' data, readable by the service's own user and nobody else on the machine.
        await mkdir(path.dirname(temp), { recursive: true, mode: 0o700 });
        return await open(temp, 'wx', 0o600);
      } catch (error) {
        if (!isMissing(error) || attempt >= CREATE_ATTEMPTS) throw error;
      }
    }
  }

  /**
   * Removes the directories below the root that a removal left empty. Keys name a directory
   * of their own (`outputs/<jobId>/<name>`): left behind, one would stay for every job that
   * ever wrote a file, long after the purge removed the file. A directory that holds anything
   * (another object, a write under way) is not empty and stays, and so do those above it.
   */
  private async removeEmptyDirectories(directory: string): Promise<void> {
    for (let current = directory; current.startsWith(this.root + path.sep); current = path.dirname(current)) {
      try {
        await rmdir(current);
      } catch {
        return;
      }
    }
  }

  /** Makes the rename itself durable: the new directory entry survives a power loss. */
  private async syncDirectory(directory: string): Promise<void> {
    let handle: FileHandle | undefined;
    try {
      handle = await open(directory, 'r');
      await handle.sync();
    } catch (error) {
      // Some filesystems refuse fsync on directories; the object is written, only its durability is weaker there.
      this.log?.debug({ err: error, directory }, 'directory fsync not supported');
    } finally {
      await handle?.close();
    }
  }
}
