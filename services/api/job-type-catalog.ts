import { z } from 'zod';
import { publicJobTypes, type RetryPolicy } from '../contract';
/** A JSON Schema document. */
export type JsonSchema = Record<string, unknown>;

export interface JobTypeDescription {
  type: string;
  description: string;
  producesFile: boolean;
  retry: RetryPolicy;
  timeoutMs: number;
  inputSchema: JsonSchema;
  outputSchema: JsonSchema;
}

/**
 * The submittable job types with standalone JSON Schemas (2020-12) of their input and
 * output, as GET /v1/job-types serves them. Built once at startup: the registry does not
 * change while the process runs.
 */
export function describeJobTypes(): JobTypeDescription[] {
  return publicJobTypes().map((definition) => ({
    type: definition.type,
    description: definition.description,
    producesFile: definition.producesFile,
    retry: definition.retry,
    timeoutMs: definition.timeoutMs,
    inputSchema: z.toJSONSchema(definition.input, { io: 'input', unrepresentable: 'any' }) as JsonSchema,
    outputSchema: z.toJSONSchema(definition.output, { io: 'output', unrepresentable: 'any' }) as JsonSchema,
  }));
}
