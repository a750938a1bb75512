import type { Readable } from 'node:stream';

export interface StoredObject {
  key: string;
  size: number;
  /** Hex SHA-256 of the bytes, computed while they streamed in. */
  sha256: string;
}

export interface PutOptions {
  contentType?: string;
  /** Stop writing and reject when more than this many bytes arrive (uploads over the limit). */
  maxBytes?: number;
  signal?: AbortSignal;
}

/**
 * Object storage behind uploads and job outputs. Writes are all-or-nothing (a reader
 * never sees a half-written object) and idempotent per key, which is what lets a
 * processor re-run after a crash without duplicating its outputs.
 */
export interface ObjectStore {
  readonly driver: 'filesystem' | 's3';
  put(key: string, body: Readable | Buffer, options?: PutOptions): Promise<StoredObject>;
  /** Streams the object; rejects with ObjectNotFoundError when it does not exist. */
  get(key: string, options?: { signal?: AbortSignal }): Promise<Readable>;
  /** Size of the object, or undefined when it does not exist. */
  head(key: string): Promise<{ size: number } | undefined>;
  delete(key: string): Promise<void>;
  /** Verifies the store can be written and read (readiness, doctor). */
  check(): Promise<void>;
}

export class ObjectNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`object ${key} not found`);
    this.name = this.constructor.name;
  }
}

export class ObjectTooLargeError extends Error {
  constructor(readonly limitBytes: number) {
    super(`object exceeds the limit of ${limitBytes} bytes`);
    this.name = this.constructor.name;
  }
}

export class InvalidObjectKeyError extends Error {
  constructor(readonly key: string) {
    super(`invalid object key ${JSON.stringify(key)}`);
    this.name = this.constructor.name;
  }
}
