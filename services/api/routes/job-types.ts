import { z } from 'zod';
import { API_PREFIX, publicJobTypes } from '../../contract';
import { endpoint, respond, type Endpoint } from '../endpoints';
import type { JobTypeDescription } from '../job-type-catalog';

const JobTypeList = z
  .object({
    items: z.array(
      z.object({
        type: z.enum(publicJobTypes().map((definition) => definition.type) as [string, ...string[]]),
        description: z.string(),
        producesFile: z.boolean(),
        retry: z.object({ attempts: z.number().int(), backoffMs: z.number().int() }),
        timeoutMs: z.number().int().meta({ description: 'How long one attempt may run.' }),
        inputSchema: z.record(z.string(), z.unknown()).meta({ description: 'JSON Schema (2020-12) of the input.' }),
        outputSchema: z.record(z.string(), z.unknown()).meta({ description: 'JSON Schema (2020-12) of the result.' }),
      }),
    ),
  })
  .meta({ id: 'JobTypeList' });

/** GET /v1/job-types: public, and serialised once since the registry is fixed for the process's life. */
export function jobTypeEndpoints(catalog: JobTypeDescription[]): Endpoint[] {
  const body = JSON.stringify({ items: catalog });
  return [
    endpoint({
      method: 'get',
      path: `${API_PREFIX}/job-types`,
      operationId: 'listJobTypes',
      summary: 'Submittable job types with the JSON Schemas of their input and output',
      tag: 'jobs',
      access: 'public',
      needsDatabase: false,
      responses: { 200: respond.json('The job types.', JobTypeList) },
      handle(_request, _req, res) {
        res.type('application/json').send(body);
      },
    }),
  ];
}
