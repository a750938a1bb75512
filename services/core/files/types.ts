import type { Readable } from 'node:stream';
import type { FileView } from '../../contract';
import type { StorageQuota } from '../db/files';
import type { Logger } from '../logger';

export interface UploadRequest {
  ownerId: string;
  name: string;
  contentType: string;
  body: Readable;
  /** Uploads over the limit are rejected with PayloadTooLargeError and leave nothing stored. */
  maxBytes: number;
  /** What the owner's storage quota leaves (QuotaExceededError past it); unlimited when unset. */
  quotaBytes?: number;
  /** The owner's whole quota, checked again as the file is registered (uploads of one owner may run at once). */
  quota?: StorageQuota;
}

export interface JobOutputRequest {
  jobId: string;
  ownerId: string;
  name: string;
  contentType: string;
  body: Readable;
  signal?: AbortSignal;
}

/**
 * Files: metadata in PostgreSQL, bytes in the object store. Another owner's file is
 * indistinguishable from a missing one (NotFoundError), so ids cannot be probed.
 */
export interface FileService {
  upload(request: UploadRequest): Promise<FileView>;
  get(ownerId: string, fileId: string): Promise<FileView>;
  /** The bytes of a file the owner may read. */
  openContent(ownerId: string, fileId: string, signal?: AbortSignal): Promise<{ file: FileView; body: Readable }>;
  /**
   * Deletes a file of the owner (NotFoundError otherwise): its row, then its bytes. A job
   * whose result it was keeps its result, without the file. `log`: the caller's (the API
   * passes its request's).
   */
  remove(ownerId: string, fileId: string, log?: Logger): Promise<void>;
  /** Throws NotFoundError naming the field when any of the ids is not the owner's file. */
  assertOwned(ownerId: string, fileIds: { field: string; fileId: string }[]): Promise<void>;
  /**
   * Stores a job's output file. Idempotent per job: a processor re-run after a crash
   * overwrites the same object and returns the same file row instead of adding one.
   */
  saveJobOutput(request: JobOutputRequest): Promise<FileView>;
}
