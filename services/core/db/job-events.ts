import type { JobEvent, JobStatus } from '../../contract';
import type { Queryable } from './jobs';

interface JobEventRow {
  id: number;
  job_id: string;
  from_status: JobStatus | null;
  to_status: JobStatus;
  detail: string | null;
  at: Date;
}

/** The audit trail of one job after `afterEventId`, oldest first (SSE resumes from the last id it sent). */
export async function listJobEvents(db: Queryable, jobId: string, afterEventId = 0, limit = 1_000): Promise<(JobEvent & { eventId: number })[]> {
  const result = await db.query<JobEventRow>({
    name: 'job-events.list',
    text: `SELECT id, job_id, from_status, to_status, detail, at FROM job_events
      WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
    values: [jobId, afterEventId, limit],
  });
  return result.rows.map((row) => ({
    eventId: row.id,
    jobId: row.job_id,
    from: row.from_status,
    to: row.to_status,
    at: row.at.toISOString(),
    detail: row.detail,
  }));
}
