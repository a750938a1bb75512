/** The API's shapes as the console reads them (DESIGN §5; the OpenAPI document at /openapi.json is the reference). */

import type { FileView, JobEvent, JobListItem, TaskCounts } from '../../contract/job-model';
import { TERMINAL_STATUSES } from '../../contract/job-statuses';

/** The statuses are the contract's own, so the console's filters and its "finished" test follow the lifecycle. */
export { JOB_STATUSES, TASK_STATUSES } from '../../contract/job-statuses';

/**
 * A job as lists and GET /v1/jobs/:id return it: the contract's own type (type-only, so the
 * bundle carries no schema code); a list item has input and result only when asked for.
 */
export type Job = JobListItem;

export type { TaskCounts };

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** GET /v1/jobs/:id/tasks: a page of a fan-out job's child tasks, with counts per status. */
export interface TaskPage extends Page<Job> {
  counts: TaskCounts;
}

/** One event of GET /v1/jobs/events and of a job's own stream. */
export type JobEventData = JobEvent;

export interface JobType {
  type: string;
  description: string;
  producesFile: boolean;
  inputSchema: Record<string, unknown>;
}

export type StoredFile = FileView;

export interface QueueStats {
  queue: string;
  paused: boolean;
  counts: Record<string, number>;
  statuses: Record<string, number>;
  relayLagSeconds: number;
}

export function isTerminal(status: string): boolean {
  return (TERMINAL_STATUSES as readonly string[]).includes(status);
}

export function parseJobEvent(data: string): JobEventData | undefined {
  try {
    const value = JSON.parse(data) as Partial<JobEventData>;
    return typeof value.jobId === 'string' && typeof value.to === 'string' ? (value as JobEventData) : undefined;
  } catch {
    return undefined;
  }
}
