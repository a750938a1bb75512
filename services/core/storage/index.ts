import type { Env } from '../../contract';
import type { Logger } from '../logger';
import { FilesystemObjectStore } from './filesystem';
import type { ObjectStore } from './object-store';
import { UploadsAndResultsStore } from './routed';
import type * as S3Driver from './s3';

export * from './object-store';
export { FilesystemObjectStore, type FilesystemObjectStoreOptions } from './filesystem';
export { JOB_OUTPUTS_PREFIX, MAIL_DROP_PREFIX, RESULTS_PREFIXES, UploadsAndResultsStore } from './routed';
export type { S3ObjectStoreOptions } from './s3';

export type ObjectStoreEnv = Pick<Env, 'OBJECT_STORE_DIR' | 'S3_BUCKET' | 'S3_RESULTS_BUCKET' | 'S3_PREFIX' | 'S3_REGION' | 'S3_ENDPOINT' | 'S3_FORCE_PATH_STYLE'>;

/**
 * S3 when S3_BUCKET is set (credentials from the default AWS chain), else the filesystem
 * under OBJECT_STORE_DIR. With S3_RESULTS_BUCKET too, what the worker writes (job outputs,
 * the mail drop) goes to that bucket and uploads to S3_BUCKET.
 */
export function createObjectStore(env: ObjectStoreEnv, log?: Logger): ObjectStore {
  if (env.S3_BUCKET) {
    log?.info({ bucket: env.S3_BUCKET, resultsBucket: env.S3_RESULTS_BUCKET, prefix: env.S3_PREFIX, endpoint: env.S3_ENDPOINT }, 'object store: S3');
    // Loaded only when used: the AWS SDK costs ~20 MB of memory in every process that imports it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { S3ObjectStore } = require('./s3') as typeof S3Driver;
    const bucket = (name: string) =>
      new S3ObjectStore({ bucket: name, prefix: env.S3_PREFIX, region: env.S3_REGION, endpoint: env.S3_ENDPOINT, forcePathStyle: env.S3_FORCE_PATH_STYLE });
    const uploads = bucket(env.S3_BUCKET);
    if (!env.S3_RESULTS_BUCKET || env.S3_RESULTS_BUCKET === env.S3_BUCKET) return uploads;
    return new UploadsAndResultsStore({ uploads, results: bucket(env.S3_RESULTS_BUCKET) });
  }
  log?.info({ root: env.OBJECT_STORE_DIR }, 'object store: filesystem');
  return new FilesystemObjectStore({ root: env.OBJECT_STORE_DIR, log });
}
