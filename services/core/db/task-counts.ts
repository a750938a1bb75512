import { escapeLiteral } from 'pg';
import { TASK_STATUSES, type JobStatus } from '../../contract';
import { auditDetail, MOVES, sqlStatusList, tasksFailedReason } from '../jobs/lifecycle';

/** A text as a SQL literal, for the lifecycle's fixed texts in a statement whose text is fixed (a named, prepared statement). */
function sqlText(text: string | null): string {
  return text === null ? 'NULL' : escapeLiteral(text);
}

/**
 * The SQL that keeps a fan-out job's counts per task status in step with its tasks' rows,
 * as CTEs to append to any statement that changes tasks. `changed` names a CTE of that
 * statement with one row per job it moved: `parent_id`, `old_status`, `new_status`. The
 * counts of each parent move once per statement by the sum of its tasks' moves (one row
 * update for a batch of 2,000, not 2,000 updates of one hot row).
 *
 * With `moveParents`, the statement also decides the parents whose last task it finished,
 * by their failure policy: `reduce` (waiting → queued, the reduce step is delivered next)
 * or `failTasks` (waiting → failed), each with its audit row. CTEs added:
 * task_deltas, task_counts, and with moveParents parent_moves (id, type, priority, status)
 * and parent_events.
 */
export function taskCountCtes(changed: string, options: { moveParents: boolean }): string {
  // job_fanouts has a count column per task status, named like the status.
  const deltas = TASK_STATUSES
    .map((status) => `count(*) FILTER (WHERE new_status = '${status}') - count(*) FILTER (WHERE old_status = '${status}') AS ${status}`)
    .join(',\n      ');
  const counts = `task_deltas AS (
      SELECT parent_id,
      ${deltas}
      FROM ${changed} WHERE parent_id IS NOT NULL AND old_status IS DISTINCT FROM new_status
      GROUP BY parent_id
    ),
    task_counts AS (
      UPDATE job_fanouts f SET ${TASK_STATUSES.map((status) => `${status} = f.${status} + d.${status}`).join(', ')}
      FROM task_deltas d WHERE f.job_id = d.parent_id
      RETURNING f.job_id, f.total, f.max_failed, f.succeeded, f.failed, f.cancelled
    )`;
  if (!options.moveParents) return counts;
  const overPolicy = 'c.failed + c.cancelled > c.max_failed';
  return `${counts},
    parent_moves AS (
      UPDATE jobs p SET
        status = CASE WHEN ${overPolicy} THEN '${MOVES.failTasks.to}' ELSE '${MOVES.reduce.to}' END,
        error = CASE WHEN ${overPolicy}
          THEN format(${sqlText(tasksFailedReason({ failed: '%s', cancelled: '%s', maxFailed: '%s' }))}, c.failed, c.cancelled, c.max_failed)
          ELSE p.error END,
        finished_at = CASE WHEN ${overPolicy} THEN now() END,
        updated_at = now()
      FROM task_counts c
      WHERE p.id = c.job_id AND p.status IN (${sqlStatusList('reduce')}) AND p.status IN (${sqlStatusList('failTasks')})
        AND (${overPolicy} OR c.succeeded + c.failed + c.cancelled = c.total)
      RETURNING p.id, p.type, p.priority, p.status, p.attempts
    ),
    parent_events AS (
      INSERT INTO job_events (job_id, from_status, to_status, attempt, detail)
      SELECT id, '${MOVES.reduce.from[0]}', status, attempts,
        CASE WHEN status = '${MOVES.failTasks.to}' THEN ${sqlText(auditDetail({ event: 'failTasks' }))} ELSE ${sqlText(auditDetail({ event: 'reduce' }))} END
      FROM parent_moves
    )`;
}

/** A fan-out job a write moved on: its reduce step queued (enqueue it) or failed by its policy (cancel its unfinished tasks). */
export interface ParentMove {
  id: string;
  type: string;
  priority: number;
  status: JobStatus;
}
