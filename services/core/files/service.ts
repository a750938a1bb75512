import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Pool } from 'pg';
import { validate as isUuid } from 'uuid';
import type { FileView } from '../../contract';
import { createFileRepository, type FileRecord, type StorageQuota } from '../db/files';
import { inTransaction } from '../db/transaction';
import { NotFoundError, PayloadTooLargeError, QuotaExceededError, ValidationError } from '../errors';
import type { Logger } from '../logger';
import { ObjectNotFoundError, ObjectTooLargeError, type ObjectStore } from '../storage/object-store';
import { JOB_OUTPUTS_PREFIX } from '../storage/routed';
import { normaliseContentType, sanitiseFileName } from './metadata';
import type { FileService } from './types';

export interface FileServiceDependencies {
  generalPool: Pool;
  store: ObjectStore;
  log: Logger;
  /** What an owner may store in all; job outputs are held to it as uploads are (QUOTA_FILES, QUOTA_STORED_BYTES). */
  quota: StorageQuota;
}

/** An upload's bytes live at `files/<ownerId>/<fileId>`: fresh per upload, so an upload never replaces another. */
function uploadKey(ownerId: string, fileId: string): string {
  return `files/${ownerId}/${fileId}`;
}

/**
 * A job's output lives at `outputs/<jobId>/<name>`: derived from the job alone, so a
 * re-run after a crash writes the same object again instead of adding a second one.
 */
function jobOutputKey(jobId: string, name: string): string {
  const keySafe = name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 200);
  return `${JOB_OUTPUTS_PREFIX}${jobId}/${/^\.*$/.test(keySafe) ? 'output' : keySafe}`;
}

function toView(record: FileRecord): FileView {
  return {
    id: record.id,
    name: record.name,
    size: record.size,
    contentType: record.contentType,
    sha256: record.sha256,
    createdAt: record.createdAt.toISOString(),
  };
}

function requireContentType(raw: string): string {
  const contentType = normaliseContentType(raw);
  if (!contentType) {
    throw new ValidationError('invalid content type', [{ field: 'contentType', message: 'must be a media type such as text/plain' }]);
  }
  return contentType;
}

/**
 * Feeds a caller's stream to the store without handing it over: a failed write ends the
 * iteration, not the caller's stream, which merely stops being read. For an HTTP request
 * body that is the difference between answering 413 and resetting the connection.
 */
function detached(body: Readable): Readable {
  // The extra generator matters: a failed write throws into it, and leaving its loop only
  // returns the inner iterator, where throwing into that iterator would destroy the body.
  return Readable.from(
    (async function* () {
      for await (const chunk of body.iterator({ destroyOnReturn: false })) yield chunk as Buffer;
    })(),
  );
}

/** Metadata in PostgreSQL, bytes in the object store; the object is written first, so a row always has its bytes. */
export function createFileService({ generalPool, store, log, quota }: FileServiceDependencies): FileService {
  const files = createFileRepository(generalPool);

  const discard = async (key: string, caller: Logger = log): Promise<void> => {
    try {
      await store.delete(key);
    } catch (error) {
      caller.warn({ err: error, key }, 'could not delete an object that no file row refers to');
    }
  };

  const findOwned = async (ownerId: string, fileId: string): Promise<FileRecord> => {
    const record = isUuid(fileId) ? await files.findForOwner(ownerId, fileId) : undefined;
    if (!record) throw new NotFoundError(`file ${fileId} not found`);
    return record;
  };

  return {
    async upload({ ownerId, name, contentType, body, maxBytes, quotaBytes, quota }) {
      const normalisedType = requireContentType(contentType);
      const id = randomUUID();
      const key = uploadKey(ownerId, id);
      const quotaBinds = quotaBytes !== undefined && quotaBytes < maxBytes;
      let stored;
      try {
        stored = await store.put(key, detached(body), { contentType: normalisedType, maxBytes: quotaBinds ? quotaBytes : maxBytes });
      } catch (error) {
        // The drivers leave nothing behind on failure; the delete covers a store that half-wrote before failing.
        await discard(key);
        if (error instanceof ObjectTooLargeError) {
          if (quotaBinds) throw new QuotaExceededError(`storage quota: this file is larger than the ${quotaBytes} bytes the quota leaves`);
          throw new PayloadTooLargeError(`file exceeds the upload limit of ${maxBytes} bytes`);
        }
        throw error;
      }
      try {
        const file = { id, ownerId, name: sanitiseFileName(name), contentType: normalisedType, size: stored.size, sha256: stored.sha256, storageKey: key };
        const record = quota ? await files.insertWithinQuota(file, quota) : await files.insert(file);
        if (!record) {
          throw new QuotaExceededError(
            `storage quota: with the uploads that finished meanwhile, this file would pass ${quota?.files} files or ${quota?.bytes} bytes; nothing was stored`,
          );
        }
        return toView(record);
      } catch (error) {
        await discard(key);
        throw error;
      }
    },

    async get(ownerId, fileId) {
      return toView(await findOwned(ownerId, fileId));
    },

    async openContent(ownerId, fileId, signal) {
      const record = await findOwned(ownerId, fileId);
      try {
        return { file: toView(record), body: await store.get(record.storageKey, { signal }) };
      } catch (error) {
        if (!(error instanceof ObjectNotFoundError)) throw error;
        // A delete committed between reading the row and opening its bytes (or the store lost them): to the caller the file is gone.
        log.warn({ fileId: record.id, key: record.storageKey }, 'a file\'s bytes were not in the object store when opened');
        throw new NotFoundError(`file ${fileId} not found`);
      }
    },

    async remove(ownerId, fileId, caller) {
      const record = await findOwned(ownerId, fileId);
      const removed = await inTransaction(generalPool, async (client) => {
        await client.query('UPDATE jobs SET result_file_id = NULL WHERE result_file_id = $1', [record.id]);
        return (await client.query('DELETE FROM files WHERE id = $1 AND owner_id = $2', [record.id, ownerId])).rowCount;
      });
      if (removed !== 1) throw new NotFoundError(`file ${fileId} not found`);
      await discard(record.storageKey, caller);
    },

    async assertOwned(ownerId, fileIds) {
      if (fileIds.length === 0) return;
      const candidates = [...new Set(fileIds.map(({ fileId }) => fileId.toLowerCase()).filter((fileId) => isUuid(fileId)))];
      const owned = await files.findOwnedIds(ownerId, candidates);
      const missing = fileIds.filter(({ fileId }) => !owned.has(fileId.toLowerCase()));
      if (missing.length > 0) {
        throw new NotFoundError(missing.map(({ field, fileId }) => `${field}: file ${fileId} not found`).join('; '));
      }
    },

    async saveJobOutput({ jobId, ownerId, name, contentType, body, signal }) {
      const normalisedType = requireContentType(contentType);
      const displayName = sanitiseFileName(name);
      const key = jobOutputKey(jobId, displayName);
      const previous = await files.findByProducingJob(jobId);
      // The job's earlier output, which this one replaces, is not counted against it.
      const used = await files.storedBy(ownerId, jobId);
      const overQuota = () =>
        new QuotaExceededError(`storage quota: the job's output would pass the owner's ${quota.files} files or ${quota.bytes} bytes; delete some files and retry the job`);
      if (used.files + 1 > quota.files || used.bytes >= quota.bytes) throw overQuota();
      let stored;
      try {
        stored = await store.put(key, body, { contentType: normalisedType, signal, maxBytes: quota.bytes - used.bytes });
      } catch (error) {
        // A store writes an object whole or not at all: an earlier run's object under the key is untouched.
        throw error instanceof ObjectTooLargeError ? overQuota() : error;
      }
      const file = { id: previous?.id ?? randomUUID(), ownerId, name: displayName, contentType: normalisedType, size: stored.size, sha256: stored.sha256, storageKey: key, producedByJobId: jobId };
      const record = await files.upsertJobOutputWithinQuota(file, quota);
      if (!record) {
        // Files registered meanwhile took the room. The bytes just stored may have replaced an earlier run's under the same key: its row goes too.
        const earlierKey = await files.deleteJobOutput(jobId);
        await discard(key);
        if (earlierKey && earlierKey !== key) await discard(earlierKey);
        throw overQuota();
      }
      // A re-run that named its output differently moved the row to a new key; the old object is now unreferenced.
      if (previous && previous.storageKey !== key) await discard(previous.storageKey);
      return toView(record);
    },
  };
}
