import { z } from 'zod';
import { JOB_STATUSES, JobView, QUEUE_DEPTH_STATES } from '../contract';

/** Response and query shapes that only the HTTP layer has; the domain's own live in the contract. */
export const JobPage = z.object({ items: z.array(JobView), nextCursor: z.string().nullable() });

export const QueueStatsView = z.object({
  queue: z.string(),
  paused: z.boolean(),
  counts: z.object(Object.fromEntries(QUEUE_DEPTH_STATES.map((state) => [state, z.number().int()]))),
  statuses: z.object(Object.fromEntries(JOB_STATUSES.map((status) => [status, z.number().int()]))),
  relayLagSeconds: z.number(),
});

export const DeadLetterQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().max(200).optional(),
  })
  .strict();

export const Problem = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string().optional(),
  instance: z.string().optional(),
  requestId: z.string().optional(),
  errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
});
