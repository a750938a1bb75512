import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { ObjectTooLargeError } from './object-store';

/**
 * Pass-through that measures an object on its way into a store: byte count and SHA-256
 * without buffering, and a size limit enforced mid-stream so an oversized body is cut
 * off at the limit rather than read to its end.
 */
export class ObjectMeter extends Transform {
  private readonly hash = createHash('sha256');
  private bytes = 0;
  private overLimit = false;

  constructor(private readonly maxBytes?: number) {
    super();
    if (maxBytes !== undefined && (!Number.isInteger(maxBytes) || maxBytes < 0)) {
      throw new RangeError('maxBytes must be a non-negative integer');
    }
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.maxBytes !== undefined && this.bytes > this.maxBytes) {
      this.overLimit = true;
      callback(new ObjectTooLargeError(this.maxBytes));
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }

  /** Whether the body went past maxBytes (the write then failed with ObjectTooLargeError). */
  get exceededLimit(): boolean {
    return this.overLimit;
  }

  /**
   * Bytes that passed so far. Deliberately not called `size`: lib-storage reads a body's
   * `size` as its total length up front and would plan the multipart upload from it.
   */
  get byteCount(): number {
    return this.bytes;
  }

  /** Hex SHA-256 of everything that passed; call once, after the stream finished. */
  digest(): string {
    return this.hash.digest('hex');
  }
}
