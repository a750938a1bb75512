import type { JobEvent, JobStatus } from '../../contract';
import type { EventRow } from './jobs';
import type { Queryable } from './pool';

/** The channel the job_events trigger (migration 0004) notifies on, once per statement that writes audit rows. */
export const JOB_EVENTS_CHANNEL = 'pk_job_events';

/** An audit row as streams carry it: the event, its id (the SSE id) and whose job it is. */
export interface StoredJobEvent extends JobEvent {
  eventId: number;
  ownerId: string;
}

interface JobEventRow {
  id: number;
  job_id: string;
  parent_id: string | null;
  owner_id: string;
  from_status: JobStatus | null;
  to_status: JobStatus;
  detail: string | null;
  at: Date;
}

function toStoredEvent(row: JobEventRow): StoredJobEvent {
  return {
    eventId: row.id,
    ownerId: row.owner_id,
    jobId: row.job_id,
    parentId: row.parent_id,
    from: row.from_status,
    to: row.to_status,
    at: row.at.toISOString(),
    detail: row.detail,
  };
}

const EVENT_COLUMNS = 'e.id, e.job_id, j.parent_id, j.owner_id, e.from_status, e.to_status, e.detail, e.at';

/**
 * The audit trail of a job, and of its tasks when it fans out, after `afterEventId`, oldest
 * first: what an event stream sends before it goes live, and when it resumes after the last
 * id it sent.
 */
export async function listJobEvents(db: Queryable, jobId: string, afterEventId = 0, limit = 1_000): Promise<StoredJobEvent[]> {
  const result = await db.query<JobEventRow>({
    name: 'job-events.list',
    text: `SELECT ${EVENT_COLUMNS} FROM job_events e JOIN jobs j ON j.id = e.job_id
      WHERE e.job_id IN (SELECT $1::uuid UNION ALL SELECT id FROM jobs WHERE parent_id = $1) AND e.id > $2
      ORDER BY e.id LIMIT $3`,
    values: [jobId, afterEventId, limit],
  });
  return result.rows.map(toStoredEvent);
}

/** Every event of an owner's jobs (tasks included) after `afterEventId`, oldest first: the list stream's resume. */
export async function listOwnerEvents(db: Queryable, ownerId: string, afterEventId: number, limit = 1_000): Promise<StoredJobEvent[]> {
  const result = await db.query<JobEventRow>({
    name: 'job-events.list-owner',
    text: `SELECT ${EVENT_COLUMNS} FROM job_events e JOIN jobs j ON j.id = e.job_id
      WHERE e.id > $2 AND j.owner_id = $1
      ORDER BY e.id LIMIT $3`,
    values: [ownerId, afterEventId, limit],
  });
  return result.rows.map(toStoredEvent);
}

/** What one notification names: the rows one statement wrote, by its transaction and the range of their ids. */
export interface WrittenEvents {
  xid: string;
  minId: number;
  maxId: number;
}

/** Parses a notification's payload (`["<xid>", minId, maxId]`); undefined for anything else. */
export function parseWrittenEvents(payload: string | undefined): WrittenEvents | undefined {
  try {
    const value: unknown = JSON.parse(payload ?? '');
    if (!Array.isArray(value) || value.length !== 3) return undefined;
    const [xid, minId, maxId] = value as unknown[];
    if (typeof xid !== 'string' || !/^\d{1,20}$/.test(xid) || !Number.isSafeInteger(minId) || !Number.isSafeInteger(maxId)) return undefined;
    return { xid, minId: minId as number, maxId: maxId as number };
  } catch {
    return undefined;
  }
}

/**
 * The rows several notifications named, in one read, oldest first. Only the notifying
 * transactions' own rows: ids are drawn before commit, so a range may hold rows of a
 * transaction that commits later, which its own notification brings.
 */
export async function readWrittenEvents(db: Queryable, written: readonly WrittenEvents[]): Promise<{ event: StoredJobEvent; xid: string }[]> {
  if (written.length === 0) return [];
  const result = await db.query<JobEventRow & { xid: string }>({
    name: 'job-events.read-written',
    text: `SELECT ${EVENT_COLUMNS}, e.xmin::text AS xid FROM job_events e JOIN jobs j ON j.id = e.job_id
      WHERE e.id BETWEEN $1 AND $2 AND e.xmin::text = ANY ($3::text[])
      ORDER BY e.id`,
    values: [Math.min(...written.map((item) => item.minId)), Math.max(...written.map((item) => item.maxId)), written.map((item) => item.xid)],
  });
  return result.rows.map((row) => ({ event: toStoredEvent(row), xid: row.xid }));
}

/**
 * The jobs of `events` whose audit row is stored already, matched on job, move, attempt and
 * time. A transition write stores its audit rows in the statement that moves the job, so a
 * stored row proves that statement committed: what a write retried after an answer that
 * never came (the server took it, then stalled past the client's timeout) asks, so it does
 * not move those jobs a second time.
 */
export async function jobsWithEvents(db: Queryable, events: readonly Pick<EventRow, 'job_id' | 'to_status' | 'attempt' | 'at_ms'>[]): Promise<Set<string>> {
  if (events.length === 0) return new Set();
  const result = await db.query<{ job_id: string }>({
    name: 'job-events.jobs-with-events',
    text: `SELECT DISTINCT e.job_id FROM job_events e
      JOIN jsonb_to_recordset($1::jsonb) AS w(job_id uuid, to_status text, attempt int, at_ms float8)
        ON e.job_id = w.job_id AND e.to_status = w.to_status AND e.attempt = w.attempt AND e.at = to_timestamp(w.at_ms / 1000)`,
    values: [JSON.stringify(events.map(({ job_id, to_status, attempt, at_ms }) => ({ job_id, to_status, attempt, at_ms })))],
  });
  return new Set(result.rows.map((row) => row.job_id));
}
