/**
 * Compile-time half of the env contract, checked by `npm run typecheck` (part of npm test):
 * each `@ts-expect-error` below must stay an error, or tsc fails on the unused directive.
 * What the platform builds for a container is typed by the services' own schema, so a key
 * the services require and a stack does not supply is a compile error, not a crash loop.
 */
import { z } from 'zod';
import type { ApiContainerEnv, MigrationsContainerEnv, WorkerContainerEnv } from '../../platform/workloads/env';
import { EnvSchema, type EnvVarsOf } from '../../services/contract';

const cloud = {
  NODE_ENV: 'production',
  LOG_LEVEL: 'info',
  SERVICE_NAME: 'api',
  DATABASE_URL: 'postgres://app:pw@db:5432/platform',
  DATABASE_SSL: 'verify-full',
  REDIS_URL: 'rediss://:token@cache:6379',
  QUEUE_PREFIX: '{pk}',
  S3_BUCKET: 'uploads',
  S3_RESULTS_BUCKET: 'results',
  S3_REGION: 'eu-west-1',
  S3_PREFIX: 'files/',
};

export const api: ApiContainerEnv = { ...cloud, PORT: '8080', API_PROCESSES: '1', KEY_ENCRYPTION_SECRET: 'k'.repeat(64), JWT_ISSUER: 'platform-kit/test', TRUST_PROXY: '1', SHUTDOWN_GRACE_MS: '25000' };

// @ts-expect-error the api requires KEY_ENCRYPTION_SECRET: leaving it out does not compile
export const apiWithoutSigningKey: ApiContainerEnv = { ...cloud, PORT: '8080', API_PROCESSES: '1', SHUTDOWN_GRACE_MS: '25000' };

const { DATABASE_SSL: _ssl, ...withoutTls } = cloud;
// @ts-expect-error the cloud must state DATABASE_SSL although the local run defaults it
export const apiWithoutTls: ApiContainerEnv = { ...withoutTls, PORT: '8080', API_PROCESSES: '1', KEY_ENCRYPTION_SECRET: 'k'.repeat(64), JWT_ISSUER: 'platform-kit/test', TRUST_PROXY: '1', SHUTDOWN_GRACE_MS: '25000' };

export const worker: WorkerContainerEnv = { ...cloud, SERVICE_NAME: 'worker', WORKER_METRICS_PORT: '9091', WORKER_CONCURRENCY: '50', JOBS_RUNNING_PER_USER: '50', SHUTDOWN_GRACE_MS: '660000' };

// @ts-expect-error the worker never receives the signing key (WorkerEnvSchema omits it)
export const workerWithSigningKey: WorkerContainerEnv = { ...worker, KEY_ENCRYPTION_SECRET: 'k'.repeat(64) };

// @ts-expect-error a misspelt key is not part of any schema
export const apiWithTypo: ApiContainerEnv = { ...api, S3_BUKET: 'uploads' };

// @ts-expect-error the migrations Job must be given the roles it creates
export const migrationsWithoutRoles: MigrationsContainerEnv = { LOG_LEVEL: 'info', DATABASE_URL: 'postgres://admin:pw@db:5432/platform', DATABASE_SSL: 'verify-full' };

/** A key added to the schema without a default is required of every env built from it. */
export const Grown = EnvSchema.extend({ NEW_REQUIRED_KEY: z.string() });
// @ts-expect-error NEW_REQUIRED_KEY is required by the grown schema and missing here
export const grown: EnvVarsOf<typeof Grown> = { DATABASE_URL: 'postgres://x', REDIS_URL: 'redis://x', KEY_ENCRYPTION_SECRET: 'k'.repeat(32) };
