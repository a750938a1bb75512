import { z } from 'zod';
import {
  FileView,
  IDEMPOTENCY_KEY_HEADER,
  IdempotencyKey,
  JOB_STATUSES,
  JobEvent,
  JobListItem,
  JobSummary,
  JobView,
  namedInputSchema,
  namedResultSchema,
  PageCursor,
  pageLimit,
  publicJobTypes,
  QUEUE_DEPTH_STATES,
  schemaName,
  TaskCounts,
  type JobTypeDefinition,
} from '../contract';

/**
 * Response and query shapes that only the HTTP layer has; the domain's own live in the
 * contract. `.meta({ id })` names a schema in the OpenAPI document's components.
 */

/**
 * A schema named `name` with one variant per public job type, told apart by `type`, each
 * named `<Type><name>` (EchoJob, …): what a client generated from the document types by the
 * job's type. A user's jobs are all of public types (a fan-out job's tasks too).
 */
function byJobType(name: string, description: string, variant: (definition: JobTypeDefinition) => z.ZodObject, describeVariant: (type: string) => string): z.ZodType {
  return z
    .discriminatedUnion(
      'type',
      publicJobTypes().map((definition) => variant(definition).meta({ id: `${schemaName(definition.type)}${name}`, description: describeVariant(definition.type) })) as unknown as [
        z.ZodObject,
        ...z.ZodObject[],
      ],
    )
    .meta({ id: name, description });
}

/** A succeeded job's result, null before: a union with null, since `.nullable()` would write null into the named result itself. */
function resultOrNull(definition: JobTypeDefinition): z.ZodType {
  return z.union([namedResultSchema(definition), z.null()]);
}

/** A caller's own job, with the input and result its type declares (what the route sends is JobView, which these variants narrow). */
export const JobViewSchema = byJobType(
  'Job',
  'A job with its input and result, as its type declares them.',
  (definition) => JobView.extend({ type: z.literal(definition.type), input: namedInputSchema(definition), result: resultOrNull(definition) }),
  (type) => `A job of type ${type}, with its input and result.`,
);
/** A job of any type, internal ones included (a dead-lettered email.send): what an operator's routes return. */
export const AnyJobSchema = JobView.meta({ id: 'AnyJob', description: 'A job of any type, internal ones included, with its input and result.' });
export const JobSummarySchema = JobSummary.meta({ id: 'JobSummary', description: 'A job without its input and result.' });
const JobListItemSchema = byJobType(
  'JobListItem',
  'A job summary, with input and result when `include` asked for them.',
  (definition) => JobListItem.extend({ type: z.literal(definition.type), input: namedInputSchema(definition).optional(), result: resultOrNull(definition).optional() }),
  (type) => `A job of type ${type} in a list, with its input and result when \`include\` asked for them.`,
);
export const FileViewSchema = FileView.meta({ id: 'File' });
/** Not a body: the `data` of each event of the job event streams (app.ts names it to the document). */
export const JobEventSchema = JobEvent.meta({ id: 'JobEvent', description: 'The `data` of one event of a job event stream; the event\'s `id` is the audit row\'s id.' });

export const JobPage = z
  .object({
    items: z.array(JobListItemSchema),
    nextCursor: z.string().nullable().meta({ description: 'Pass back as `cursor` for the next page; null on the last page.' }),
  })
  .meta({ id: 'JobPage' });

export const TaskPage = z
  .object({
    items: z.array(JobSummarySchema),
    nextCursor: z.string().nullable().meta({ description: 'Pass back as `cursor` for the next page; null on the last page.' }),
    counts: TaskCounts,
  })
  .meta({ id: 'TaskPage' });

export const JobSummaryPage = z.object({ items: z.array(JobSummarySchema), nextCursor: z.string().nullable() }).meta({ id: 'JobSummaryPage' });

export const QueueStatsView = z
  .object({
    queue: z.string(),
    paused: z.boolean(),
    counts: z.object(Object.fromEntries(QUEUE_DEPTH_STATES.map((state) => [state, z.number().int()]))),
    statuses: z.object(Object.fromEntries(JOB_STATUSES.map((status) => [status, z.number().int()]))),
    relayLagSeconds: z.number(),
  })
  .meta({ id: 'QueueStats' });

export const DeadLetterQuery = z
  .object({
    limit: pageLimit(100, 20),
    cursor: PageCursor.optional(),
  })
  .strict();

export const IdempotencyHeaders = z.object({
  [IDEMPOTENCY_KEY_HEADER]: IdempotencyKey.optional().meta({ description: 'Repeat a submission safely: the same key and body return the same job.' }),
});

export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    instance: z.string().optional(),
    requestId: z.string().optional(),
    errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
    limitBytes: z.number().int().optional().meta({ description: 'The limit a body over it passed (a 413 of a JSON body: JSON_BODY_LIMIT_BYTES).' }),
  })
  .meta({ id: 'Problem', description: 'An RFC 9457 problem document.' });
