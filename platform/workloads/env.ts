import * as pulumi from '@pulumi/pulumi';
import {
  type EnvVars,
  LONGEST_JOB_TIMEOUT_MS,
  type MigrateEnvVars,
  PORTS,
  SECRET_ENV_KEYS,
  type SecretEnvKey,
  type WorkerEnvVars,
} from '../../services/contract';

/**
 * A container's environment, typed by the services' own schema: every key the schema
 * requires is required here (`EnvVarsOf` keeps zod's optionality), and `Cloud` lists the
 * keys the cloud must set although the local run may leave them to their defaults. A
 * key added to the contract that no stack supplies is a compile error in this file.
 */
export type ContainerEnv<Vars, Cloud extends keyof Vars> = { [K in keyof Vars]: pulumi.Input<string> } & { [K in Cloud]-?: pulumi.Input<string> };

/** What the cloud states explicitly for every service, whatever the local defaults are. */
type CommonCloudKeys = 'NODE_ENV' | 'LOG_LEVEL' | 'SERVICE_NAME' | 'DATABASE_URL' | 'DATABASE_SSL' | 'REDIS_URL' | 'QUEUE_PREFIX';
type StorageCloudKeys = 'S3_BUCKET' | 'S3_RESULTS_BUCKET' | 'S3_REGION' | 'S3_PREFIX';

export type ApiContainerEnv = ContainerEnv<EnvVars, CommonCloudKeys | StorageCloudKeys | 'PORT' | 'API_PROCESSES' | 'KEY_ENCRYPTION_SECRET' | 'JWT_ISSUER' | 'TRUST_PROXY' | 'SHUTDOWN_GRACE_MS'>;
export type WorkerContainerEnv = ContainerEnv<WorkerEnvVars, CommonCloudKeys | StorageCloudKeys | 'WORKER_METRICS_PORT' | 'WORKER_CONCURRENCY' | 'JOBS_RUNNING_PER_USER' | 'SHUTDOWN_GRACE_MS'>;
export type MigrationsContainerEnv = ContainerEnv<
  MigrateEnvVars,
  'LOG_LEVEL' | 'DATABASE_URL' | 'DATABASE_SSL' | 'DATABASE_APP_USER' | 'DATABASE_APP_PASSWORD' | 'DATABASE_SCALER_USER' | 'DATABASE_SCALER_PASSWORD'
>;

/** A login to PostgreSQL. */
export interface DatabaseLogin {
  user: string;
  password: pulumi.Input<string>;
}

/** Infra outputs and stack settings the services' environments are built from. */
export interface EnvironmentInputs {
  /** AWS region of the buckets. */
  region: string;
  database: {
    address: pulumi.Input<string>;
    port: number;
    name: string;
    /** The schema owner (RDS master user): the migrations Job only. */
    owner: DatabaseLogin;
    /** What the api and worker connect as. */
    app: DatabaseLogin;
    /** What the autoscaler connects as. */
    scaler: DatabaseLogin;
  };
  /** `rediss://:<auth token>@<primary endpoint>:6379`. Secret. */
  redisUrl: pulumi.Input<string>;
  buckets: { uploads: pulumi.Input<string>; results: pulumi.Input<string> };
  /** S3_PREFIX: the key prefix the IRSA grants stop at, e.g. `files/`. */
  objectPrefix: string;
  /** Seals the token signing keys in PostgreSQL (KEY_ENCRYPTION_SECRET). Secret. */
  keyEncryptionSecret: pulumi.Input<string>;
  /** `iss` of the stack's access tokens (JWT_ISSUER): a token of one stack is refused by another. */
  tokenIssuer: string;
  /** Where the stack serves the console (links in mails). */
  publicUrl: string;
  logLevel: string;
  /** BullMQ key prefix (a hash tag). */
  queuePrefix: string;
  api: { shutdownGraceMs: number };
  worker: { concurrency: number; jobsRunningPerUser: number };
}

/** Queue key prefix in the cloud: the contract's default, stated. */
export const CLOUD_QUEUE_PREFIX = '{pk}';

/**
 * How long a worker's SIGTERM drain waits: the longest job timeout of the contract, so an
 * attempt running when a rollout or scale-down begins ends on its own (success, failure or
 * timeout) before the worker exits.
 */
export const WORKER_SHUTDOWN_GRACE_MS = LONGEST_JOB_TIMEOUT_MS;

/**
 * What the worker container reads from its own pod (the downward API). WORKER_SLOT is the
 * pod's uid: only that pod's one worker container runs under it, and the kubelet starts
 * the container again only after the last one exited, so a worker restarted after a crash
 * or an OOM kill releases at once the jobs the last one was running.
 */
export const WORKER_FIELD_ENV = { WORKER_SLOT: 'metadata.uid' } as const satisfies Partial<Record<keyof WorkerEnvVars, string>>;

/** `postgres://user:password@host:port/db`, no `sslmode` (pg would let it override DATABASE_SSL). Secret. */
export function databaseUrl(database: EnvironmentInputs['database'], login: DatabaseLogin): pulumi.Output<string> {
  return pulumi.secret(pulumi.interpolate`postgres://${login.user}:${login.password}@${database.address}:${database.port}/${database.name}`);
}

function shared(inputs: EnvironmentInputs, service: 'api' | 'worker') {
  return {
    NODE_ENV: 'production',
    LOG_LEVEL: inputs.logLevel,
    SERVICE_NAME: service,
    DATABASE_URL: databaseUrl(inputs.database, inputs.database.app),
    // RDS forces TLS; the services check its certificate against AWS's RDS roots.
    DATABASE_SSL: 'verify-full',
    REDIS_URL: pulumi.secret(inputs.redisUrl),
    QUEUE_PREFIX: inputs.queuePrefix,
    S3_BUCKET: inputs.buckets.uploads,
    S3_RESULTS_BUCKET: inputs.buckets.results,
    S3_REGION: inputs.region,
    S3_PREFIX: inputs.objectPrefix,
  } as const;
}

export function apiEnvironment(inputs: EnvironmentInputs): ApiContainerEnv {
  return {
    ...shared(inputs, 'api'),
    PORT: String(PORTS.api),
    // Replicas scale the API; one process per pod keeps a pod's CPU request honest.
    API_PROCESSES: '1',
    KEY_ENCRYPTION_SECRET: pulumi.secret(inputs.keyEncryptionSecret),
    JWT_ISSUER: inputs.tokenIssuer,
    // The ALB is the one proxy in front of the pods: believe its hop of X-Forwarded-For, no other.
    TRUST_PROXY: '1',
    PUBLIC_URL: inputs.publicUrl,
    SHUTDOWN_GRACE_MS: String(inputs.api.shutdownGraceMs),
  };
}

export function workerEnvironment(inputs: EnvironmentInputs): WorkerContainerEnv {
  return {
    ...shared(inputs, 'worker'),
    WORKER_METRICS_PORT: String(PORTS.workerMetrics),
    WORKER_CONCURRENCY: String(inputs.worker.concurrency),
    JOBS_RUNNING_PER_USER: String(inputs.worker.jobsRunningPerUser),
    SHUTDOWN_GRACE_MS: String(WORKER_SHUTDOWN_GRACE_MS),
  };
}

export function migrationsEnvironment(inputs: EnvironmentInputs): MigrationsContainerEnv {
  const { database } = inputs;
  return {
    LOG_LEVEL: inputs.logLevel,
    DATABASE_URL: databaseUrl(database, database.owner),
    DATABASE_SSL: 'verify-full',
    DATABASE_APP_USER: database.app.user,
    DATABASE_APP_PASSWORD: pulumi.secret(database.app.password),
    DATABASE_SCALER_USER: database.scaler.user,
    DATABASE_SCALER_PASSWORD: pulumi.secret(database.scaler.password),
  };
}

function isSecretKey(key: string): key is SecretEnvKey {
  return (SECRET_ENV_KEYS as readonly string[]).includes(key);
}

/**
 * A container env split into ConfigMap data (plain settings) and Secret data (the
 * contract's SECRET_ENV_KEYS), each a flat string map as `envFrom` reads it.
 */
export function splitEnvironment(env: Record<string, pulumi.Input<string> | undefined>): { config: Record<string, pulumi.Input<string>>; secret: Record<string, pulumi.Input<string>> } {
  const config: Record<string, pulumi.Input<string>> = {};
  const secret: Record<string, pulumi.Input<string>> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (isSecretKey(key)) secret[key] = pulumi.secret(value);
    else config[key] = value;
  }
  return { config, secret };
}
