import type { WorkerEnv } from '../contract';
import type { SessionRepository } from '../core/db/sessions';
import type { JobRemoval } from '../core/jobs/removal';
import type { Logger } from '../core/logger';

/**
 * Runs the retention purge every PURGE_INTERVAL_SECONDS (and once shortly after start):
 * finished jobs past JOB_RETENTION_DAYS, and the sessions, refresh tokens and reset tokens
 * that have expired. Several workers purging at once is safe: each batch skips rows another
 * holds.
 */
export function startRetentionPurge(
  purges: { jobs: Pick<JobRemoval, 'purge'>; credentials: Pick<SessionRepository, 'purgeExpired'> },
  env: Pick<WorkerEnv, 'JOB_RETENTION_DAYS' | 'PURGE_INTERVAL_SECONDS'>,
  log: Logger,
): { stop(): void } {
  let running = false;
  const run = async () => {
    if (running) return;
    running = true;
    try {
      const purged = await purges.jobs.purge(env.JOB_RETENTION_DAYS);
      if (purged > 0) log.info({ purged, retentionDays: env.JOB_RETENTION_DAYS }, 'purged finished jobs past retention');
    } catch (error) {
      log.warn({ err: error }, 'retention purge of jobs failed; tried again at the next interval');
    }
    try {
      const expired = await purges.credentials.purgeExpired();
      if (expired.refreshTokens + expired.sessions + expired.resetTokens > 0) log.info(expired, 'purged expired sessions and tokens');
    } catch (error) {
      log.warn({ err: error }, 'retention purge of expired sessions and tokens failed; tried again at the next interval');
    } finally {
      running = false;
    }
  };
  const first = setTimeout(() => void run(), 10_000);
  const timer = setInterval(() => void run(), env.PURGE_INTERVAL_SECONDS * 1000);
  first.unref();
  timer.unref();
  return {
    stop() {
      clearTimeout(first);
      clearInterval(timer);
    },
  };
}
