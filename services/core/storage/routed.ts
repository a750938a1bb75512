import type { Readable } from 'node:stream';
import type { ObjectStore, PutOptions, StoredObject } from './object-store';

/** Where the file service keeps job outputs. */
export const JOB_OUTPUTS_PREFIX = 'outputs/';
/** Where the worker drops the messages `email.send` writes, for a mail relay to pick up. */
export const MAIL_DROP_PREFIX = 'mail/';
/**
 * What the worker writes: the results store holds it (in the cloud, the one bucket the
 * worker may write to). Every other key is an upload, which the worker only reads.
 */
export const RESULTS_PREFIXES: readonly string[] = [JOB_OUTPUTS_PREFIX, MAIL_DROP_PREFIX];

/**
 * Uploads and what the worker writes in two stores (the cloud's uploads and results
 * buckets, each with its own lifecycle and its own grants), chosen by key: a key under one
 * of `RESULTS_PREFIXES` belongs to `results`, any other to `uploads`. The key itself is
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
    return RESULTS_PREFIXES.some((prefix) => key.startsWith(prefix)) ? this.stores.results : this.stores.uploads;
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
