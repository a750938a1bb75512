import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { assertValidObjectKey } from './object-key';
import { ObjectMeter } from './object-meter';
import { ObjectNotFoundError, ObjectTooLargeError, type ObjectStore, type PutOptions, type StoredObject } from './object-store';

export interface S3ObjectStoreOptions {
  bucket: string;
  /** Prepended to every key as a folder (`tenant-a` stores `files/x` at `tenant-a/files/x`). Empty by default. */
  prefix?: string;
  /** Region of the bucket. Unset: the SDK's resolution (AWS_REGION, the shared config). */
  region?: string;
  /** An S3-compatible endpoint such as MinIO or LocalStack. Unset means AWS itself. */
  endpoint?: string;
  /** `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`; most S3-compatible servers need it. Off by default. */
  forcePathStyle?: boolean;
  /** Static credentials. Unset means the default AWS chain (environment, IRSA web identity, instance profile). */
  credentials?: S3ClientConfig['credentials'];
  /** Multipart part size; S3's minimum, 5 MiB, by default. A body up to one part goes up as a single PutObject. */
  partSizeBytes?: number;
  /** Parts in flight per upload; memory per upload is about partSizeBytes × (queueSize + 1). 4 by default. */
  queueSize?: number;
  /** How long opening a connection may take. 5 s by default. */
  connectionTimeoutMs?: number;
  /** How long a request may wait with no bytes moving either way (not its total time: a big part streams for longer). 30 s by default. */
  requestTimeoutMs?: number;
}

interface S3ServiceError {
  name?: string;
  $metadata?: { httpStatusCode?: number };
}

/** A missing object, told apart from a missing bucket (a configuration error, which must surface). */
function isMissingObject(error: unknown): boolean {
  const { name, $metadata } = error as S3ServiceError;
  if (name === 'NoSuchBucket') return false;
  return name === 'NoSuchKey' || name === 'NotFound' || $metadata?.httpStatusCode === 404;
}

function normalisePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, '');
  return trimmed === '' ? '' : `${trimmed}/`;
}

/**
 * Objects in an S3 bucket (or an S3-compatible server). Uploads stream through
 * lib-storage's Upload: one PutObject for small bodies, multipart for big ones, and an
 * AbortMultipartUpload when anything fails, so a failed or oversized write leaves no object.
 */
export class S3ObjectStore implements ObjectStore {
  readonly driver = 's3' as const;
  readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly partSizeBytes?: number;
  private readonly queueSize?: number;

  constructor(options: S3ObjectStoreOptions) {
    this.bucket = options.bucket;
    this.prefix = normalisePrefix(options.prefix ?? '');
    this.partSizeBytes = options.partSizeBytes;
    this.queueSize = options.queueSize;
    this.client = new S3Client({
      region: options.region,
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle ?? false,
      credentials: options.credentials,
      // Every call is bounded: a store that accepts connections but never answers fails the call, which the SDK retries.
      requestHandler: { connectionTimeout: options.connectionTimeoutMs ?? 5_000, requestTimeout: options.requestTimeoutMs ?? 30_000, throwOnRequestTimeout: true },
      maxAttempts: 3,
      // S3-compatible servers often reject the SDK's default CRC32 trailers; send checksums only where S3 requires them.
      ...(options.endpoint ? { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' } : {}),
    });
  }

  async put(key: string, body: Readable | Buffer, options: PutOptions = {}): Promise<StoredObject> {
    const objectKey = this.objectKey(key);
    const { signal, maxBytes } = options;
    signal?.throwIfAborted();
    const meter = new ObjectMeter(maxBytes);
    const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: objectKey, Body: meter, ContentType: options.contentType },
      partSize: this.partSizeBytes,
      queueSize: this.queueSize,
      leavePartsOnError: false,
    });
    // An abort destroys the source and the meter; the upload then fails on its next read
    // and aborts the multipart upload before done() settles, so nothing is left behind.
    const [fed, uploaded] = await Promise.allSettled([
      pipeline(source, meter, signal ? { signal } : {}),
      // An upload that stops reading (a failed part) would otherwise leave the feeding pipeline waiting forever.
      upload.done().catch((error: unknown) => {
        meter.destroy(error as Error);
        throw error;
      }),
    ]);
    if (meter.exceededLimit && maxBytes !== undefined) throw new ObjectTooLargeError(maxBytes);
    if (fed.status === 'rejected') throw fed.reason;
    if (uploaded.status === 'rejected') throw uploaded.reason;
    return { key, size: meter.byteCount, sha256: meter.digest() };
  }

  async get(key: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    const objectKey = this.objectKey(key);
    try {
      const output = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }), { abortSignal: options.signal });
      if (!(output.Body instanceof Readable)) throw new Error(`S3 GetObject for ${key} returned no readable body`);
      return output.Body;
    } catch (error) {
      if (isMissingObject(error)) throw new ObjectNotFoundError(key);
      throw error;
    }
  }

  async head(key: string): Promise<{ size: number } | undefined> {
    const objectKey = this.objectKey(key);
    try {
      const output = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      return { size: output.ContentLength ?? 0 };
    } catch (error) {
      if (isMissingObject(error)) return undefined;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
  }

  /**
   * One key listed under the prefix: the bucket exists and these credentials may read it.
   * Not HeadBucket: that needs ListBucket on the whole bucket, and the cloud's workloads may
   * list only under their prefix (platform/identity), so it would be refused there.
   */
  async check(): Promise<void> {
    await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix, MaxKeys: 1 }));
  }

  private objectKey(key: string): string {
    assertValidObjectKey(key);
    return `${this.prefix}${key}`;
  }
}
