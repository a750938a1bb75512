import type { JobStatus } from '../../contract';
import { ChangedSinceReadError, ConflictError } from '../../core/errors';
import type { JobPage } from '../../core/jobs/types';
import type { Runtime } from '../../core/runtime';
import * as parse from '../args';
import type { RuntimeAction } from '../context';
import { UsageError, printJson, printTable, shownArgument } from '../output';

/**
 * Which dead letters a command takes: of one type, and whose error holds a text. The
 * dead-letter set mixes what an operator replays (a broken dependency, fixed since) with what
 * they must not (one client's bad input), often of one type, told apart by their errors.
 */
export interface DeadLetterFilter {
  type?: string;
  error?: string;
}

const MAX_ERROR_TEXT = 500;

function errorText(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value.length === 0 || value.length > MAX_ERROR_TEXT) throw new UsageError(`--error must be a text of 1 to ${MAX_ERROR_TEXT} characters found in the error, got ${shownArgument(value)}`);
  return value;
}

function deadLetterFilter(options: { type?: string; error?: string }): DeadLetterFilter {
  const type = parse.jobType(options.type);
  const error = errorText(options.error);
  return { ...(type !== undefined && { type }), ...(error !== undefined && { error }) };
}

/** A page of the dead letters the filter takes, newest first. */
function deadLetterPage(core: Runtime, filter: DeadLetterFilter, limit: number, cursor: string | undefined): Promise<JobPage> {
  return core.admin.deadLetters({ limit, cursor, type: filter.type, errorContains: filter.error });
}

export function listDeadLetters(options: { limit?: string; cursor?: string; type?: string; error?: string; json?: boolean }): RuntimeAction {
  const query = { limit: parse.limit(options.limit, 20), cursor: parse.cursor(options.cursor) };
  const filter = deadLetterFilter(options);
  return async (core) => {
    const page = await deadLetterPage(core, filter, query.limit, query.cursor);
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

/**
 * What became of one job of a replay:
 * - replayed: queued again, and handed to Redis;
 * - queued: queued again, but Redis did not take the hand-off: the relay's sweep hands it over
 *   once Redis answers (the rest of the run is then left, see below);
 * - skipped: not the dead letter this replay took it for (no longer failed, or failed again
 *   after the replay began): left as it is;
 * - failed: the replay was refused or failed;
 * - left: not tried, still dead-lettered: Redis stopped taking hand-offs earlier in the run.
 */
export type ReplayOutcomeKind = 'replayed' | 'queued' | 'skipped' | 'failed' | 'left';

export interface ReplayOutcome {
  id: string;
  /** Queued again (replayed or queued). */
  replayed: boolean;
  outcome: ReplayOutcomeKind;
  /** Why it is not simply replayed. */
  error?: string;
}

/** A job as this replay read it, just after it began. */
interface JobAsOf {
  status: JobStatus;
  updated_us: number;
  finished_at: Date | null;
  /** Whether it finished after the replay began (null when it has not finished). */
  finished_since: boolean | null;
}

/** PostgreSQL's clock now, in ISO 8601 with its microseconds (a JavaScript Date would cut them to milliseconds). */
async function databaseNow(core: Runtime): Promise<string> {
  const { rows } = await core.generalPool.query<{ now: string }>(`SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS now`);
  return (rows[0] as { now: string }).now;
}

async function readAsOf(core: Runtime, ids: readonly string[], asOf: string): Promise<Map<string, JobAsOf>> {
  const { rows } = await core.generalPool.query<JobAsOf & { id: string }>(
    `SELECT id, status, (extract(epoch FROM updated_at) * 1000000)::bigint AS updated_us, finished_at, finished_at > $2::timestamptz AS finished_since
       FROM jobs WHERE id = ANY($1::uuid[])`,
    [ids, asOf],
  );
  return new Map(rows.map(({ id, ...row }) => [id, row]));
}

/**
 * Why a job is not the dead letter this replay took it for, or undefined when it is: failed,
 * and no later than the replay began. One failed since was replayed by someone else meanwhile
 * (the console's Operations page) and has run again: replaying it once more would run it twice
 * for one decision.
 */
function notTheDeadLetter(row: JobAsOf | undefined): string | undefined {
  if (!row) return 'not found (deleted, or purged)';
  if (row.status === 'cancelled') return 'not a dead letter: it was cancelled (platform jobs retry re-queues it)';
  if (row.status !== 'failed') return `not a dead letter any more: it is ${row.status} (replayed meanwhile?)`;
  if (row.finished_since !== false) {
    return `failed again at ${row.finished_at?.toISOString() ?? '?'}, after this replay began: someone replayed it meanwhile; replay it again if you mean to run it once more`;
  }
  return undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Replays one job that was the dead letter it was when this replay began, on the condition
 * that it still is as read then (core.admin.replay's asRead, checked in the transaction that
 * moves it): a console replay, a run and a new failure landing after the read leave it
 * skipped, not replayed a second time. The replay itself is the platform's (a fan-out job's
 * tasks, a task only while its job waits, the hand-off to Redis).
 */
async function replayOne(core: Runtime, id: string, asRead: JobAsOf, asOf: string): Promise<ReplayOutcome> {
  try {
    const { handedOver } = await core.admin.replay(id, undefined, { asRead: { status: asRead.status, updatedUs: asRead.updated_us } });
    if (handedOver) return { id, replayed: true, outcome: 'replayed' };
    return { id, replayed: true, outcome: 'queued', error: 'Redis did not take it: queued in PostgreSQL, the relay hands it over once Redis answers' };
  } catch (error) {
    if (error instanceof ChangedSinceReadError) {
      const now = (await readAsOf(core, [id], asOf)).get(id);
      return { id, replayed: false, outcome: 'skipped', error: notTheDeadLetter(now) ?? messageOf(error) };
    }
    return { id, replayed: false, outcome: 'failed', error: messageOf(error) };
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

const LEFT = 'not tried, still dead-lettered: Redis did not take an earlier job of this replay; replay it once Redis answers (platform doctor)';

/**
 * Replays the named jobs, or with --all every dead letter (newest first, up to --limit), as
 * they stood when the command began, one replay at a time. Replays one job at a time and
 * reports each, so a partial failure says what was done.
 *
 * Once Redis does not take a job's hand-off, the rest are left dead-lettered instead of each
 * waiting out its own hand-off (5 s a job while Redis hangs). Queued in PostgreSQL they would
 * be handed over by the relay's sweep later, but the sweep finds the entry a crash loop left
 * in Redis (kept a day, which a replay's hand-off removes first) and dead-letters such a job
 * again without running it; a dead letter stays where the next replay finds it.
 */
export function replayDeadLetters(ids: string[], options: { all?: boolean; limit?: string; type?: string; error?: string; json?: boolean }): RuntimeAction {
  if (options.all && ids.length > 0) throw new UsageError('give job ids or --all, not both');
  if (!options.all && ids.length === 0) throw new UsageError('give one or more job ids, or --all');
  // Named jobs are replayed as named: a filter or a limit beside them would read as applied.
  if (!options.all && (options.type !== undefined || options.error !== undefined || options.limit !== undefined)) throw new UsageError('--type, --error and --limit go with --all, not with job ids');
  const named = options.all ? undefined : [...new Set(ids.map((id) => parse.uuid(id).toLowerCase()))];
  const allLimit = parse.limit(options.limit, 100);
  const filter = deadLetterFilter(options);
  return (core) =>
    oneReplayAtATime(core, async () => {
      const asOf = await databaseNow(core);
      const targets = named ?? (await deadLetterPage(core, filter, allLimit, undefined)).items.map((job) => job.id);
      const read = await readAsOf(core, targets, asOf);
      const outcomes: ReplayOutcome[] = [];
      let redisStopped = false;
      for (const id of targets) {
        const row = read.get(id);
        const skip = notTheDeadLetter(row);
        if (skip !== undefined || !row) outcomes.push({ id, replayed: false, outcome: 'skipped', error: skip });
        else if (redisStopped) outcomes.push({ id, replayed: false, outcome: 'left', error: LEFT });
        else {
          const outcome = await replayOne(core, id, row, asOf);
          redisStopped = outcome.outcome === 'queued';
          outcomes.push(outcome);
        }
      }
      const counts = countOutcomes(outcomes);
      if (options.json) printJson({ asOf, counts, outcomes });
      else {
        printTable(outcomes, ['id', 'outcome', 'error']);
        process.stdout.write(`\n${summary(counts)}\n`);
      }
      return counts.replayed === outcomes.length ? 0 : 1;
    });
}

function countOutcomes(outcomes: readonly ReplayOutcome[]): Record<ReplayOutcomeKind, number> {
  const counts: Record<ReplayOutcomeKind, number> = { replayed: 0, queued: 0, skipped: 0, failed: 0, left: 0 };
  for (const { outcome } of outcomes) counts[outcome] += 1;
  return counts;
}

function summary(counts: Record<ReplayOutcomeKind, number>): string {
  const parts = [`replayed ${counts.replayed}`];
  if (counts.queued > 0) parts.push(`queued for the relay ${counts.queued} (Redis did not take them)`);
  parts.push(`skipped ${counts.skipped}`, `failed ${counts.failed}`);
  if (counts.left > 0) parts.push(`left dead-lettered ${counts.left} (not tried once Redis stopped taking jobs: replay them once it answers)`);
  return parts.join(', ');
}
