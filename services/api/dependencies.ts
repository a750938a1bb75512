import type { Redis } from 'ioredis';
import type { Env } from '../contract';
import { createIdentity, createSecurityEvents, type AuthService, type SecurityEvents } from '../core/auth';
import { DatabaseAvailability } from '../core/db/availability';
import { createQuotas, type Quotas } from '../core/quotas';
import type { FileService } from '../core/files/types';
import { createJobRemoval, type JobRemoval } from '../core/jobs/removal';
import type { EventHub } from '../core/jobs/event-hub';
import type { JobAdmin, JobService } from '../core/jobs/types';
import type { Logger } from '../core/logger';
import type { Metrics } from '../core/metrics';
import type { Runtime } from '../core/runtime';

/**
 * Reachability checks behind /readyz; each rejects when its dependency is down or has not
 * answered within the check's own deadline (the core's checks: see Runtime.checks).
 */
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
  security: SecurityEvents;
  quotas: Quotas;
  jobs: JobService;
  removal: JobRemoval;
  admin: JobAdmin;
  /** Job events as they commit: what the event streams serve. */
  events: EventHub;
  files: FileService;
  checks: ReadinessChecks;
  /** Whether requests should ask PostgreSQL at all; without it every request does. */
  database?: DatabaseAvailability;
  /** The Redis `client` connection; rate-limit counters live there so every API process shares them. */
  redis?: Redis;
  lifecycle?: Lifecycle;
  /** Defaults to this process's registry. */
  metricsSource?: MetricsSource;
  /** A build of the web console to serve at `/`; without one the console's paths answer 404. */
  consoleDir?: string;
  /** Stops what the dependencies started themselves (key refresh, denylist subscription). */
  close?: () => Promise<void>;
}

/** The app's dependencies wired from a platform core: what the API process and the API tests both run. */
export async function dependenciesFromCore(
  env: Env,
  core: Runtime,
  parts: { log: Logger; metrics: Metrics; lifecycle: Lifecycle; metricsSource?: MetricsSource; consoleDir?: string },
): Promise<AppDependencies> {
  const identity = await createIdentity(env, core, { log: parts.log, metrics: parts.metrics, mirror: true });
  const database = new DatabaseAvailability({ probe: () => core.checks.postgres(), log: parts.log, metrics: parts.metrics });
  return {
    env,
    ...parts,
    auth: identity.auth,
    security: createSecurityEvents(parts.log, parts.metrics),
    quotas: createQuotas(core.generalPool, env),
    jobs: core.jobs,
    removal: createJobRemoval({ generalPool: core.generalPool, store: core.store, log: parts.log }),
    admin: core.admin,
    events: core.events,
    files: core.files,
    checks: {
      ...core.checks,
      // A passing readiness check is an answer from PostgreSQL like a probe's.
      async postgres() {
        await core.checks.postgres();
        database.answered();
      },
    },
    database,
    redis: core.redis.client,
    close: async () => {
      database.close();
      await identity.close();
    },
  };
}
