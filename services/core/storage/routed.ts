import type { Readable } from 'node:stream';
import type { ObjectStore, PutOptions, StoredObject } from './object-store';

/** Where the file service keeps job outputs; every other key is an upload. */
export const JOB_OUTPUTS_PREFIX = 'outputs/';

/**
 * Uploads and job outputs in two stores (the cloud's uploads and results buckets, each
 * with its own lifecycle and its own grants), chosen by key: a key under
 * `JOB_OUTPUTS_PREFIX` belongs to `results`, any other to `uploads`. The key itself is
 * unchanged, so a file row's storage key still names its object.
 */
export class UploadsAndResultsStore implements ObjectStore {
  readonly driver: ObjectStore['driver'];

  constructor(private readonly stores: { uploads: ObjectStore; results: ObjectStore }) {
    if (stores.uploads.driver !== stores.results.driver) throw new Error('the uploads and results stores must use the same driver');
    this.driver = stores.uploads.driver;
  }

  /** The store that holds `key`. */
  storeFor(key: string): ObjectStore {
    return key.startsWith(JOB_OUTPUTS_PREFIX) ? this.stores.results : this.stores.uploads;
  }

  put(key: string, body: Readable | Buffer, options?: PutOptions): Promise<StoredObject> {
    return this.storeFor(key).put(key, body, options);
  }

  get(key: string, options?: { signal?: AbortSignal }): Promise<Readable> {
    return this.storeFor(key).get(key, options);
  }

  head(key: string): Promise<{ size: number } | undefined> {
    return this.storeFor(key).head(key);
  }

  delete(key: string): Promise<void> {
    return this.storeFor(key).delete(key);
  }

  async check(): Promise<void> {
    await Promise.all([this.stores.uploads.check(), this.stores.results.check()]);
  }
}
