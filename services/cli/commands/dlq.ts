import type { JobStatus } from '../../contract';
import { ConflictError } from '../../core/errors';
import type { Runtime } from '../../core/runtime';
import * as parse from '../args';
import type { RuntimeAction } from '../context';
import { UsageError, printJson, printTable } from '../output';

export function listDeadLetters(options: { limit?: string; cursor?: string; json?: boolean }): RuntimeAction {
  const query = { limit: parse.limit(options.limit, 20), cursor: parse.cursor(options.cursor) };
  return async (core) => {
    const page = await core.admin.deadLetters(query);
    if (options.json) {
      printJson(page);
      return 0;
    }
    printTable(
      page.items.map((job) => ({ id: job.id, type: job.type, attempts: `${job.attempts}/${job.maxAttempts}`, failed: job.finishedAt, error: job.error })),
      ['id', 'type', 'attempts', 'failed', 'error'],
    );
    if (page.nextCursor) process.stdout.write(`next page: --cursor ${page.nextCursor}\n`);
    return 0;
  };
}

export interface ReplayOutcome {
  id: string;
  replayed: boolean;
  /** Why it was not replayed. */
  error?: string;
}

/** PostgreSQL's clock now, in ISO 8601 with its microseconds (a JavaScript Date would cut them to milliseconds). */
async function databaseNow(core: Runtime): Promise<string> {
  const { rows } = await core.generalPool.query<{ now: string }>(`SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS now`);
  return (rows[0] as { now: string }).now;
}

/**
 * Replays one job if it is still the dead letter it was when this replay began: failed, and
 * failed no later than `asOf`. A job failed since was replayed by someone else meanwhile (the
 * console's Operations page) and has run again: replaying it once more would run it twice for
 * one decision. The replay itself is the platform's (core.admin.replay: a fan-out job's tasks,
 * a task only while its job waits, the hand-off to Redis), whose move needs the job still
 * failed, so no job is queued twice by it; but this check and that move are two statements,
 * and a console replay, a run and a new failure all landing between them is the case left.
 */
async function replayAsOf(core: Runtime, id: string, asOf: string): Promise<ReplayOutcome> {
  const { rows } = await core.generalPool.query<{ status: JobStatus; finished_at: Date | null; failed_since: boolean | null }>(
    'SELECT status, finished_at, finished_at > $2::timestamptz AS failed_since FROM jobs WHERE id = $1',
    [id, asOf],
  );
  const row = rows[0];
  if (!row) return { id, replayed: false, error: 'not found (deleted, or purged)' };
  if (row.status === 'cancelled') return { id, replayed: false, error: 'not a dead letter: it was cancelled (platform jobs retry re-queues it)' };
  if (row.status !== 'failed') return { id, replayed: false, error: `not a dead letter any more: it is ${row.status} (replayed meanwhile?)` };
  if (row.failed_since !== false) {
    return { id, replayed: false, error: `failed again at ${row.finished_at?.toISOString() ?? '?'}, after this replay began: someone replayed it meanwhile; replay it again if you mean to run it once more` };
  }
  try {
    await core.admin.replay(id);
    return { id, replayed: true };
  } catch (error) {
    return { id, replayed: false, error: error instanceof Error ? error.message : String(error) };
  }
}

/** Arbitrary but fixed, beside the migration and relay sweep locks: one `dlq replay` at a time. */
export const REPLAY_LOCK_KEY = 7_203_114_522;

/**
 * Runs `work` while holding the replay lock, or refuses at once when another replay holds it.
 * Waiting would not do: a replay begun after another one ends lists the jobs that one just
 * replayed, once they fail again, and runs them a second time for the same decision.
 */
async function oneReplayAtATime<T>(core: Runtime, work: () => Promise<T>): Promise<T> {
  const session = await core.generalPool.connect();
  try {
    const { rows } = await session.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [REPLAY_LOCK_KEY]);
    if (!rows[0]?.locked) {
      const holder = await session.query<{ pid: number; since: Date | null }>(
        `SELECT a.pid, a.backend_start AS since FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted AND ((l.classid::bigint << 32) | l.objid::bigint) = $1`,
        [REPLAY_LOCK_KEY],
      );
      const who = holder.rows[0] ? ` (PostgreSQL session ${holder.rows[0].pid}, since ${holder.rows[0].since?.toISOString() ?? '?'})` : '';
      throw new ConflictError(`another platform dlq replay is running${who}: let it end, then see what is left with platform dlq list`);
    }
    try {
      return await work();
    } finally {
      await session.query('SELECT pg_advisory_unlock($1)', [REPLAY_LOCK_KEY]);
    }
  } finally {
    session.release();
  }
}

/**
 * Replays the named jobs, or with --all every dead letter (newest first, up to --limit), as
 * they stood when the command began, one replay at a time. Replays one job at a time and
 * reports each, so a partial failure says what was done.
 */
export function replayDeadLetters(ids: string[], options: { all?: boolean; limit?: string; json?: boolean }): RuntimeAction {
  if (options.all && ids.length > 0) throw new UsageError('give job ids or --all, not both');
  if (!options.all && ids.length === 0) throw new UsageError('give one or more job ids, or --all');
  const named = options.all ? undefined : [...new Set(ids.map((id) => parse.uuid(id).toLowerCase()))];
  const allLimit = parse.limit(options.limit, 100);
  return (core) =>
    oneReplayAtATime(core, async () => {
      const asOf = await databaseNow(core);
      const targets = named ?? (await core.admin.deadLetters({ limit: allLimit })).items.map((job) => job.id);
      const outcomes: ReplayOutcome[] = [];
      for (const id of targets) outcomes.push(await replayAsOf(core, id, asOf));
      if (options.json) printJson({ asOf, outcomes });
      else printTable(outcomes, ['id', 'replayed', 'error']);
      return outcomes.every((outcome) => outcome.replayed) ? 0 : 1;
    });
}
