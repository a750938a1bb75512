import { z } from 'zod';
import { FailurePolicy, JsonValue, MAX_TASKS, SubmitOptions } from './job-model';
import { FileId } from './file-inputs';
import { defineJobType, type FileMemoryBounds, type JobTypeDefinition } from './job-types';

/** File jobs stream up to the upload limit (25 MiB by default); a quarter of an hour leaves room for slow object stores. */
const FILE_JOB_TIMEOUT_MS = 15 * 60_000;

const MiB = 1_048_576;
/**
 * text.stats counts distinct words in a table of 200,000 at most. Short distinct words fill
 * it fastest per byte of file; once it is full of them, longer words take their places and
 * cost about their own length; full of 256-character words of a two-byte script it holds
 * the most it ever does. Measured in bench/FINDINGS.md.
 */
const TEXT_STATS_MEMORY: FileMemoryBounds = [
  { bytes: 0, perFileByte: 16 },
  { bytes: 12.5 * MiB, perFileByte: 1.6 },
  { bytes: 120 * MiB, perFileByte: 0 },
];
/**
 * csv.summary's parser reads up to 16 records ahead of the summary, each up to a million
 * characters, and a wide header keeps its 10,000 names and cells. Measured in bench/FINDINGS.md.
 */
const CSV_SUMMARY_MEMORY: FileMemoryBounds = [
  { bytes: 0, perFileByte: 7 },
  { bytes: 8 * MiB, perFileByte: 1.1 },
  { bytes: 36 * MiB, perFileByte: 0 },
];
/**
 * Brotli's window and tables grow with the size hint the processor gives it, up to its 4 MiB
 * window; gzip's state is a fixed few hundred kilobytes, no more than any stream's buffers.
 * Measured (resident memory, outside the V8 heap) in bench/FINDINGS.md.
 */
const BROTLI_MEMORY: FileMemoryBounds = [
  { bytes: 3 * MiB, perFileByte: 2 },
  { bytes: 16 * MiB, perFileByte: 0 },
];

export const echo = defineJobType({
  type: 'echo',
  description: 'Returns its payload unchanged. Useful for smoke tests and benchmarks.',
  input: z.object({ payload: JsonValue.optional() }).strict(),
  output: z.object({ payload: JsonValue.optional() }),
  retry: { attempts: 3, backoffMs: 500 },
  timeoutMs: 30_000,
  // It runs in microseconds: the queue entry is most of its cost.
  jobsPerQueueEntry: 10,
});

export const sleep = defineJobType({
  type: 'sleep',
  description: 'Waits for the given number of milliseconds; honours cancellation.',
  input: z.object({ ms: z.number().int().min(0).max(600_000) }).strict(),
  output: z.object({ sleptMs: z.number().int() }),
  retry: { attempts: 3, backoffMs: 1_000 },
  // The longest sleep accepted, and a minute to spare.
  timeoutMs: 660_000,
});

export const fileChecksum = defineJobType({
  type: 'file.checksum',
  description: 'Computes a digest of an uploaded file, streaming it in constant memory.',
  input: z.object({ fileId: FileId, algorithm: z.enum(['sha256', 'sha1', 'md5']).default('sha256') }).strict(),
  output: z.object({ algorithm: z.string(), digest: z.string() }),
  timeoutMs: FILE_JOB_TIMEOUT_MS,
});

export const fileCompress = defineJobType({
  type: 'file.compress',
  description: 'Compresses an uploaded file with gzip or brotli; the output file id is in resultFileId.',
  input: z.object({ fileId: FileId, format: z.enum(['gzip', 'brotli']).default('gzip') }).strict(),
  output: z.object({ format: z.enum(['gzip', 'brotli']), size: z.number().int(), ratio: z.number() }),
  producesFile: true,
  timeoutMs: FILE_JOB_TIMEOUT_MS,
  fileMemory: (input) => (input.format === 'brotli' ? BROTLI_MEMORY : undefined),
});

export const textStats = defineJobType({
  type: 'text.stats',
  description: 'Counts bytes, lines and words of a UTF-8 text file and lists its ten most frequent words.',
  input: z.object({ fileId: FileId }).strict(),
  output: z.object({
    bytes: z.number().int(),
    lines: z.number().int(),
    words: z.number().int(),
    topWords: z.array(z.object({ word: z.string(), count: z.number().int() })),
  }),
  timeoutMs: FILE_JOB_TIMEOUT_MS,
  fileMemory: () => TEXT_STATS_MEMORY,
});

export const csvSummary = defineJobType({
  type: 'csv.summary',
  description: 'Summarises a CSV file: row count and, per column, filled and empty cells and numeric min/max/mean.',
  input: z
    .object({
      fileId: FileId,
      delimiter: z.string().length(1).default(','),
      header: z.boolean().default(true),
    })
    .strict(),
  output: z.object({
    rows: z.number().int(),
    columns: z.array(
      z.object({
        name: z.string(),
        count: z.number().int(),
        empty: z.number().int(),
        numeric: z.object({ min: z.number(), max: z.number(), mean: z.number() }).optional(),
      }),
    ),
  }),
  timeoutMs: FILE_JOB_TIMEOUT_MS,
  fileMemory: () => CSV_SUMMARY_MEMORY,
});

const failurePolicy = FailurePolicy.default({ mode: 'fail-fast' });
const checksumAlgorithm = z.enum(['sha256', 'sha1', 'md5']).default('sha256');

export const filesChecksum = defineJobType({
  type: 'files.checksum',
  description:
    'Checksums many uploaded files, one file.checksum task per file, and writes a manifest (`<digest>  <name>` per line, as sha256sum prints) whose id is in resultFileId.',
  input: z
    .object({
      fileIds: z
        .array(FileId)
        .min(1)
        .max(MAX_TASKS)
        // A uuid is one file however its hex digits are cased (PostgreSQL compares them so): as text, one file could be named thousands of times.
        .refine((ids) => new Set(ids.map((id) => id.toLowerCase())).size === ids.length, 'must not name a file twice')
        .meta({ uniqueItems: true }),
      algorithm: checksumAlgorithm,
      failurePolicy,
    })
    .strict(),
  output: z.object({ algorithm: z.string(), files: z.number().int(), succeeded: z.number().int(), failed: z.number().int(), manifestSha256: z.string() }),
  producesFile: true,
  timeoutMs: FILE_JOB_TIMEOUT_MS,
  fanOut: {
    childType: 'file.checksum',
    tasks: (input) => input.fileIds.map((id) => ({ fileId: id, algorithm: input.algorithm })),
    failurePolicy: (input) => input.failurePolicy,
  },
});

/**
 * What echo.batch's tasks' payloads may add up to (each task carries a copy): a fan-out is
 * inserted in one statement, and 10,000 copies of a payload near the body limit would be
 * gigabytes, more than one statement, a JavaScript string or the API's memory can hold.
 */
export const MAX_ECHO_BATCH_PAYLOAD_BYTES = 16 * 1_048_576;

/** Bytes of a value's JSON text as UTF-8, what PostgreSQL stores it from. */
function jsonBytes(value: unknown): number {
  return value === undefined ? 0 : new TextEncoder().encode(JSON.stringify(value)).length;
}

export const echoBatch = defineJobType({
  type: 'echo.batch',
  description: `Fans out into \`count\` echo tasks and counts their outcomes. Useful for smoke tests and benchmarks of fan-out. Every task carries the payload: count × its JSON bytes may come to ${MAX_ECHO_BATCH_PAYLOAD_BYTES} at most.`,
  input: z
    .object({ count: z.number().int().min(1).max(MAX_TASKS), payload: JsonValue.optional(), failurePolicy })
    .strict()
    .superRefine((input, context) => {
      const bytes = input.count * jsonBytes(input.payload);
      if (bytes > MAX_ECHO_BATCH_PAYLOAD_BYTES) {
        context.addIssue({
          code: 'custom',
          path: ['payload'],
          message: `copied into ${input.count} tasks it comes to ${bytes} bytes; count × payload bytes may be ${MAX_ECHO_BATCH_PAYLOAD_BYTES} bytes at most`,
        });
      }
    }),
  output: z.object({ tasks: z.number().int(), succeeded: z.number().int(), failed: z.number().int() }),
  retry: { attempts: 3, backoffMs: 500 },
  timeoutMs: 60_000,
  fanOut: {
    childType: 'echo',
    tasks: (input) => Array.from({ length: input.count }, () => ({ payload: input.payload })),
    failurePolicy: (input) => input.failurePolicy,
  },
});

export const emailSend = defineJobType({
  type: 'email.send',
  description: 'Sends a transactional e-mail (password resets). Internal: not submittable over HTTP.',
  input: z.object({ to: z.email(), subject: z.string().min(1).max(200), text: z.string().max(100_000) }).strict(),
  output: z.object({ messageId: z.string() }),
  retry: { attempts: 5, backoffMs: 5_000 },
  timeoutMs: 60_000,
  internal: true,
  secretInputKeys: ['text'],
});

/**
 * Every job type the platform knows, by name. Adding a type takes four edits, each checked:
 * its defineJobType above (timeoutMs required; a field holding file ids declared with FileId,
 * which is what makes the submit check their owner and lets the worker open them, and named
 * `fileId`/`fileIds` or ending so: tests/unit/jobs/file-references.test.ts holds the names to
 * the declarations) and its entry here; its processor,
 * `services/worker/jobs/<type>.ts` with defineProcessor (tsc holds it to the input, output
 * and producesFile); its entry in PROCESSORS (`services/worker/jobs/index.ts`: tsc refuses
 * a type without one); and its row in README's Job types table (a test compares it).
 * A type with fileMemory joins the list in tests/unit/contract/file-memory.test.ts.
 */
export const JOB_TYPES = {
  [echo.type]: echo,
  [sleep.type]: sleep,
  [fileChecksum.type]: fileChecksum,
  [fileCompress.type]: fileCompress,
  [textStats.type]: textStats,
  [csvSummary.type]: csvSummary,
  [filesChecksum.type]: filesChecksum,
  [echoBatch.type]: echoBatch,
  [emailSend.type]: emailSend,
} as const satisfies Record<string, JobTypeDefinition>;

for (const definition of Object.values(JOB_TYPES) as JobTypeDefinition[]) {
  const childType = definition.fanOut?.childType;
  if (childType === undefined) continue;
  const child = (JOB_TYPES as Record<string, JobTypeDefinition>)[childType];
  if (!child || child.fanOut || child.internal) throw new Error(`job type ${definition.type}: its tasks' type ${childType} must be a declared public type that does not fan out`);
}

export type JobTypeName = keyof typeof JOB_TYPES;

export function findJobType(name: string): JobTypeDefinition | undefined {
  return Object.hasOwn(JOB_TYPES, name) ? JOB_TYPES[name as JobTypeName] : undefined;
}

/**
 * The queue entries a submission makes, what the queued-jobs quota counts: its tasks for a
 * fan-out type (the job itself waits, it is not queued), one otherwise.
 */
export function queueEntriesOf(type: string, input: unknown): number {
  const fanOut = findJobType(type)?.fanOut;
  return fanOut ? Math.max(1, fanOut.tasks(input).length) : 1;
}

/** The jobs a submission keeps, what the job quota counts: a fan-out job and its tasks, one otherwise. */
export function jobsKeptBy(type: string, queueEntries: number): number {
  return findJobType(type)?.fanOut ? queueEntries + 1 : 1;
}

/** The longest attempt any job type may run: what a worker's shutdown drain must wait for. */
export const LONGEST_JOB_TIMEOUT_MS = Math.max(...Object.values(JOB_TYPES).map((definition) => definition.timeoutMs));

/** The types a client may submit over HTTP. */
export function publicJobTypes(): JobTypeDefinition[] {
  return Object.values(JOB_TYPES).filter((definition) => !definition.internal);
}

/** Component name of a type's parts in the OpenAPI document: `echo` → `Echo`, `file.checksum` → `FileChecksum`. */
export function schemaName(type: string): string {
  return type
    .split('.')
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join('');
}

/**
 * Each public type's input and output schemas, named `<Type>Input` and `<Type>Result` in the
 * OpenAPI document. One instance of each serves every place the document shows it (the
 * submit body, the job views), so the document names it once.
 */
const NAMED_SCHEMAS: ReadonlyMap<string, { input: z.ZodType; result: z.ZodType }> = new Map(
  publicJobTypes().map((definition) => [
    definition.type,
    { input: definition.input.meta({ id: `${schemaName(definition.type)}Input` }), result: definition.output.meta({ id: `${schemaName(definition.type)}Result` }) },
  ]),
);

function namedSchemas(definition: JobTypeDefinition): { input: z.ZodType; result: z.ZodType } {
  const named = NAMED_SCHEMAS.get(definition.type);
  if (!named) throw new Error(`job type ${definition.type} is internal: the API document names no schema of it`);
  return named;
}

/** A public type's input schema as the OpenAPI document names it (`echo` → `EchoInput`). */
export function namedInputSchema(definition: JobTypeDefinition): z.ZodType {
  return namedSchemas(definition).input;
}

/** A public type's output schema, a succeeded job's result, as the OpenAPI document names it (`echo` → `EchoResult`). */
export function namedResultSchema(definition: JobTypeDefinition): z.ZodType {
  return namedSchemas(definition).result;
}

/**
 * Body of POST /v1/jobs: one variant per public type, told apart by `type`, each with that
 * type's own input schema. The route validates with it and the OpenAPI document is
 * generated from it, so both always list the same types with the same inputs. Its output
 * is branded: the submit use case takes only a body this schema parsed, so nothing
 * validates a submission a second time.
 */
export const SubmitJobBody: z.ZodType<SubmitJobBody> = z.discriminatedUnion(
  'type',
  publicJobTypes().map((definition) =>
    z
      .object({ type: z.literal(definition.type), input: namedInputSchema(definition), ...SubmitOptions })
      .strict()
      .meta({ id: `Submit${schemaName(definition.type)}`, description: definition.description }),
  ) as unknown as [z.ZodObject, ...z.ZodObject[]],
).meta({ id: 'SubmitJobBody' }) as unknown as z.ZodType<SubmitJobBody, unknown>;
/** A submission the body schema accepted: `input` is the named type's input, its defaults applied. */
export type SubmitJobBody = {
  type: string;
  input: unknown;
  maxAttempts?: number;
  priority?: number;
} & z.$brand<'SubmitJobBody'>;
