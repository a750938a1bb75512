import type { Redis } from 'ioredis';
import type { Env } from '../contract';
import { createAccessTokens, createAuthService, type AuthService } from '../core/auth';
import { createUserRepository } from '../core/db/users';
import type { FileService } from '../core/files/types';
import type { JobAdmin, JobService } from '../core/jobs/types';
import type { Logger } from '../core/logger';
import type { Metrics } from '../core/metrics';
import type { Runtime } from '../core/runtime';

/** Reachability checks behind /readyz; each rejects when its dependency is down. */
export interface ReadinessChecks {
  postgres(): Promise<void>;
  redis(): Promise<void>;
}

/** Shared between the app and the server: set when SIGTERM arrives, so /readyz fails before the listener closes. */
export interface Lifecycle {
  draining: boolean;
}

/** The Prometheus exposition the /metrics route serves (one process, or the aggregate of a cluster). */
export type MetricsSource = () => Promise<{ contentType: string; body: string }>;

export interface AppDependencies {
  env: Env;
  log: Logger;
  metrics: Metrics;
  auth: AuthService;
  jobs: JobService;
  admin: JobAdmin;
  files: FileService;
  checks: ReadinessChecks;
  /** The Redis `client` connection; rate-limit counters live there so every API process shares them. */
  redis?: Redis;
  lifecycle?: Lifecycle;
  /** Defaults to this process's registry. */
  metricsSource?: MetricsSource;
  /** A build of the web console to serve at `/`; without one the console's paths answer 404. */
  consoleDir?: string;
}

/** The app's dependencies wired from a platform core: what the API process and the API tests both run. */
export function dependenciesFromCore(
  env: Env,
  core: Runtime,
  parts: { log: Logger; metrics: Metrics; lifecycle: Lifecycle; metricsSource?: MetricsSource; consoleDir?: string },
): AppDependencies {
  return {
    env,
    ...parts,
    auth: createAuthService(createUserRepository(core.generalPool), createAccessTokens(env)),
    jobs: core.jobs,
    admin: core.admin,
    files: core.files,
    checks: core.checks,
    redis: core.redis.client,
  };
}
