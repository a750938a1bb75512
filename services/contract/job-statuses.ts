// The statuses alone, without zod, so the web console's bundle can share them without carrying a schema library.

/**
 * queued → running → succeeded | failed | cancelled; a retry goes running → queued. A
 * fan-out job waits in `waiting` while its tasks run, then its reduce step is queued.
 */
export const JOB_STATUSES = ['queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const TERMINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];

/** The statuses a fan-out job's tasks can be in: tasks never fan out themselves. */
export const TASK_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
