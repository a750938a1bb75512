/** The API's shapes as the console reads them (DESIGN §5; the OpenAPI document at /openapi.json is the reference). */

import { TERMINAL_STATUSES } from '../../contract/job-statuses';

/** The statuses are the contract's own, so the console's filters and its "finished" test follow the lifecycle. */
export { JOB_STATUSES, TASK_STATUSES } from '../../contract/job-statuses';

export interface Job {
  id: string;
  type: string;
  status: string;
  attempts: number;
  maxAttempts: number;
  priority: number;
  progress: number;
  input?: unknown;
  result?: unknown;
  resultFileId: string | null;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** The fan-out job this job is a task of. */
  parentId?: string | null;
  /** A fan-out job's tasks by status; null for any other job. */
  tasks?: TaskCounts | null;
}

export interface TaskCounts {
  total: number;
  queued: number;
  running: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  failurePolicy: { mode: string; maxFailed?: number };
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** GET /v1/jobs/:id/tasks: a page of a fan-out job's child tasks, with counts per status. */
export interface TaskPage extends Page<Job> {
  counts: TaskCounts;
}

export interface JobEventData {
  jobId: string;
  /** Set on a fan-out task's events: its job. */
  parentId?: string | null;
  from: string | null;
  to: string;
  at: string;
  detail: string | null;
}

export interface JobType {
  type: string;
  description: string;
  producesFile: boolean;
  inputSchema: Record<string, unknown>;
}

export interface StoredFile {
  id: string;
  name: string;
  size: number;
  contentType: string;
  sha256: string;
  createdAt: string;
}

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
