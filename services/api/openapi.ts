import type { z } from 'zod';
import {
  API_PREFIX,
  FileView,
  IDEMPOTENCY_KEY_HEADER,
  IdempotencyKey,
  JobEvent,
  JobView,
  ListJobsQuery,
  PATHS,
  PROBLEM_CONTENT_TYPE,
  REQUEST_ID_HEADER,
  SubmitJobBody,
  publicJobTypes,
} from '../contract';
import { AccessTokenResponse, LoginBody, RegisterBody, RegisteredUser, UserView } from '../core/auth';
import { SchemaCollector, type JsonSchema } from './json-schema';
import { DeadLetterQuery, JobPage, Problem, QueueStatsView } from './schemas';

type Operation = Record<string, unknown>;

/**
 * The OpenAPI 3.1 document, generated from the same zod schemas the routes validate with,
 * so the document cannot drift from the behaviour. Built once at startup.
 */
export function buildOpenApiDocument(options: { version: string; serverUrl?: string }): Record<string, unknown> {
  const schemas = new SchemaCollector();
  const ref = (name: string, schema: z.ZodType, io: 'input' | 'output' = 'output') => schemas.component(name, schema, io);

  const problemRef = ref('Problem', Problem);
  const problem = (description: string) => ({ description, content: { [PROBLEM_CONTENT_TYPE]: { schema: problemRef } } });
  const json = (description: string, schema: JsonSchema, headers?: Record<string, unknown>) => ({
    description,
    ...(headers && { headers }),
    content: { 'application/json': { schema } },
  });
  const bearer = [{ bearerAuth: [] }];
  const idParameter = (what: string) => ({ name: 'id', in: 'path', required: true, description: `The ${what}'s id.`, schema: { type: 'string', format: 'uuid' } });
  const queryParameters = (schema: z.ZodObject) =>
    Object.entries(schemas.inline('query', schema, 'input').properties as Record<string, JsonSchema>).map(([name, parameterSchema]) => ({
      name,
      in: 'query',
      required: false,
      schema: parameterSchema,
    }));
  const location = { Location: { description: 'Where the resource can be read.', schema: { type: 'string' } } };
  const authErrors = { '401': problem('Missing, invalid or expired access token.'), '429': problem('Rate limited; see Retry-After.') };

  const jobView = ref('JobView', JobView);
  const fileView = ref('FileView', FileView);
  const jobTypeInputs = publicJobTypes().map((definition) => {
    const name = `JobInput_${definition.type.replace(/\./g, '_')}`;
    // Results are documented as components too; a job's `result` holds one of them.
    ref(`JobResult_${definition.type.replace(/\./g, '_')}`, definition.output);
    return { definition, input: ref(name, definition.input, 'input') };
  });
  const envelope = schemas.inline('SubmitJob', SubmitJobBody, 'input');
  const envelopeProperties = envelope.properties as Record<string, JsonSchema>;
  const submitVariants = jobTypeInputs.map(({ definition, input }) => {
    const name = `SubmitJob_${definition.type.replace(/\./g, '_')}`;
    schemas.components[name] = {
      ...envelope,
      description: definition.description,
      properties: { ...envelopeProperties, type: { const: definition.type }, input },
      required: ['type', 'input'],
    };
    return { name, type: definition.type };
  });
  schemas.components.SubmitJobBody = {
    oneOf: submitVariants.map(({ name }) => ({ $ref: `#/components/schemas/${name}` })),
    discriminator: { propertyName: 'type', mapping: Object.fromEntries(submitVariants.map(({ name, type }) => [type, `#/components/schemas/${name}`])) },
  };

  const paths: Record<string, Record<string, Operation>> = {
    [`${API_PREFIX}/auth/register`]: {
      post: {
        tags: ['auth'],
        summary: 'Create an account',
        requestBody: { required: true, content: { 'application/json': { schema: ref('RegisterBody', RegisterBody, 'input') } } },
        responses: {
          '201': json('The account.', ref('RegisteredUser', RegisteredUser)),
          '400': problem('Invalid email or a password outside the policy (12-256 characters).'),
          '409': problem('The email is taken.'),
          '415': problem('The body is not JSON.'),
          '429': problem('Too many attempts from this address; see Retry-After.'),
        },
      },
    },
    [`${API_PREFIX}/auth/login`]: {
      post: {
        tags: ['auth'],
        summary: 'Exchange credentials for a short-lived access token',
        requestBody: { required: true, content: { 'application/json': { schema: ref('LoginBody', LoginBody, 'input') } } },
        responses: {
          '200': json('A bearer access token.', ref('AccessTokenResponse', AccessTokenResponse)),
          '400': problem('Malformed credentials.'),
          '401': problem('Unknown email or wrong password (one answer for both).'),
          '429': problem('Too many attempts from this address; see Retry-After.'),
        },
      },
    },
    [`${API_PREFIX}/auth/me`]: {
      get: { tags: ['auth'], summary: 'The caller', security: bearer, responses: { '200': json('The caller.', ref('UserView', UserView)), ...authErrors } },
    },
    [`${API_PREFIX}/files`]: {
      post: {
        tags: ['files'],
        summary: 'Upload a file (multipart field "file", or the raw bytes with their Content-Type and an optional X-File-Name)',
        security: bearer,
        parameters: [{ name: 'X-File-Name', in: 'header', required: false, description: 'Name of a raw upload (percent-encoded when not ASCII).', schema: { type: 'string' } }],
        requestBody: {
          required: true,
          content: {
            'multipart/form-data': { schema: { type: 'object', properties: { file: { type: 'string', contentMediaType: 'application/octet-stream' } }, required: ['file'] } },
            'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } },
          },
        },
        responses: {
          '201': json('The stored file.', fileView, location),
          '400': problem('Malformed multipart body or no "file" part.'),
          '413': problem('Over the upload limit; nothing was stored.'),
          '415': problem('No Content-Type.'),
          ...authErrors,
        },
      },
    },
    [`${API_PREFIX}/files/{id}`]: {
      get: { tags: ['files'], summary: 'File metadata', security: bearer, parameters: [idParameter('file')], responses: { '200': json('The file.', fileView), '404': problem('No such file of the caller.'), ...authErrors } },
    },
    [`${API_PREFIX}/files/{id}/content`]: {
      get: {
        tags: ['files'],
        summary: 'File bytes',
        security: bearer,
        parameters: [idParameter('file')],
        responses: { '200': { description: 'The bytes, with their Content-Type and Content-Length.', content: { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } }, '404': problem('No such file of the caller.'), ...authErrors },
      },
    },
    [`${API_PREFIX}/job-types`]: {
      get: {
        tags: ['jobs'],
        summary: 'Submittable job types with the JSON Schemas of their input and output',
        responses: {
          '200': json('The job types.', {
            type: 'object',
            properties: {
              items: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    type: { type: 'string', enum: jobTypeInputs.map(({ definition }) => definition.type) },
                    description: { type: 'string' },
                    producesFile: { type: 'boolean' },
                    retry: { type: 'object', properties: { attempts: { type: 'integer' }, backoffMs: { type: 'integer' } } },
                    inputSchema: { type: 'object' },
                    outputSchema: { type: 'object' },
                  },
                },
              },
            },
          }),
        },
      },
    },
    [`${API_PREFIX}/jobs`]: {
      post: {
        tags: ['jobs'],
        summary: 'Submit a job',
        description:
          'Accepted jobs are never lost. With an Idempotency-Key, a repeat of the same submission returns the same job (also 202); the same key with another body is 409.',
        security: bearer,
        parameters: [{ name: IDEMPOTENCY_KEY_HEADER, in: 'header', required: false, schema: schemas.inline('IdempotencyKey', IdempotencyKey, 'input') }],
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/SubmitJobBody' } } } },
        responses: {
          '202': json('The accepted job.', jobView, location),
          '400': problem('Unknown type or invalid input; `errors` lists the fields.'),
          '404': problem('A file the input names is not the caller\'s.'),
          '409': problem('The Idempotency-Key was used with another body.'),
          '413': problem('Body over the JSON limit.'),
          '415': problem('The body is not JSON.'),
          ...authErrors,
        },
      },
      get: {
        tags: ['jobs'],
        summary: 'The caller\'s jobs, newest first',
        security: bearer,
        parameters: queryParameters(ListJobsQuery),
        responses: { '200': json('One page; pass nextCursor back as cursor for the next.', ref('JobPage', JobPage)), '400': problem('Invalid query.'), ...authErrors },
      },
    },
    [`${API_PREFIX}/jobs/{id}`]: {
      get: { tags: ['jobs'], summary: 'A job', security: bearer, parameters: [idParameter('job')], responses: { '200': json('The job.', jobView), '404': problem('No such job of the caller.'), ...authErrors } },
    },
    [`${API_PREFIX}/jobs/{id}/cancel`]: {
      post: {
        tags: ['jobs'],
        summary: 'Cancel a job (a running job is signalled to abort)',
        security: bearer,
        parameters: [idParameter('job')],
        responses: { '200': json('The job.', jobView), '404': problem('No such job of the caller.'), '409': problem('The job is already terminal.'), ...authErrors },
      },
    },
    [`${API_PREFIX}/jobs/{id}/retry`]: {
      post: {
        tags: ['jobs'],
        summary: 'Re-queue a failed or cancelled job',
        security: bearer,
        parameters: [idParameter('job')],
        responses: { '202': json('The re-queued job.', jobView, location), '404': problem('No such job of the caller.'), '409': problem('The job is not failed or cancelled.'), ...authErrors },
      },
    },
    [`${API_PREFIX}/jobs/{id}/events`]: {
      get: {
        tags: ['jobs'],
        summary: 'Server-Sent Events of the job\'s state changes; resumes after Last-Event-ID and ends after a terminal state',
        security: bearer,
        parameters: [idParameter('job'), { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string', pattern: '^[0-9]+$' } }],
        responses: {
          '200': { description: 'An event stream; each event\'s data is a JobEvent.', content: { 'text/event-stream': { schema: { type: 'string' }, itemSchema: ref('JobEvent', JobEvent) } } },
          '404': problem('No such job of the caller.'),
          ...authErrors,
        },
      },
    },
    [`${API_PREFIX}/admin/queues`]: {
      get: { tags: ['admin'], summary: 'Queue counts per state, PostgreSQL statuses and relay lag', security: bearer, responses: { '200': json('Queue statistics.', ref('QueueStats', QueueStatsView)), '403': problem('Not an admin.'), ...authErrors } },
    },
    [`${API_PREFIX}/admin/queues/pause`]: {
      post: { tags: ['admin'], summary: 'Pause the queue (workers stop taking new jobs)', security: bearer, responses: { '204': { description: 'Paused.' }, '403': problem('Not an admin.'), ...authErrors } },
    },
    [`${API_PREFIX}/admin/queues/resume`]: {
      post: { tags: ['admin'], summary: 'Resume the queue', security: bearer, responses: { '204': { description: 'Resumed.' }, '403': problem('Not an admin.'), ...authErrors } },
    },
    [`${API_PREFIX}/admin/dlq`]: {
      get: { tags: ['admin'], summary: 'Dead-lettered jobs, newest first', security: bearer, parameters: queryParameters(DeadLetterQuery), responses: { '200': json('One page.', ref('JobPage', JobPage)), '403': problem('Not an admin.'), ...authErrors } },
    },
    [`${API_PREFIX}/admin/dlq/{id}/replay`]: {
      post: {
        tags: ['admin'],
        summary: 'Replay a dead-lettered job with a fresh attempt budget',
        security: bearer,
        parameters: [idParameter('job')],
        responses: { '202': json('The re-queued job.', jobView, location), '403': problem('Not an admin.'), '404': problem('No such dead-lettered job.'), '409': problem('The job is not dead-lettered.'), ...authErrors },
      },
    },
    [PATHS.healthz]: { get: { tags: ['operations'], summary: 'Liveness', responses: { '200': json('The process is alive.', { type: 'object', properties: { status: { const: 'ok' } } }) } } },
    [PATHS.readyz]: {
      get: {
        tags: ['operations'],
        summary: 'Readiness: PostgreSQL and Redis reachable and not draining',
        responses: { '200': json('Ready.', { type: 'object', properties: { status: { const: 'ready' }, checks: { type: 'object' } } }), '503': problem('Not ready; `checks` names the failing dependency.') },
      },
    },
    [PATHS.metrics]: { get: { tags: ['operations'], summary: 'Prometheus metrics', responses: { '200': { description: 'Text exposition format.', content: { 'text/plain': { schema: { type: 'string' } } } } } } },
  };

  return {
    openapi: '3.1.0',
    info: {
      title: 'Platform Kit API',
      version: options.version,
      description: 'Submit jobs, upload files, and poll or stream job status. Errors are application/problem+json (RFC 9457) and carry the request id.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    ...(options.serverUrl && { servers: [{ url: options.serverUrl }] }),
    tags: [{ name: 'auth' }, { name: 'files' }, { name: 'jobs' }, { name: 'admin' }, { name: 'operations' }],
    paths: addRequestIdHeader(paths),
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas: schemas.components,
    },
  };
}

/** Every response carries X-Request-Id; stating it once here keeps the operations above readable. */
function addRequestIdHeader(paths: Record<string, Record<string, Operation>>): Record<string, Record<string, Operation>> {
  const header = { [REQUEST_ID_HEADER.replace(/(^|-)([a-z])/g, (_m, dash: string, letter: string) => dash + letter.toUpperCase())]: { description: 'Correlation id of the request.', schema: { type: 'string' } } };
  for (const operations of Object.values(paths)) {
    for (const operation of Object.values(operations)) {
      for (const response of Object.values(operation.responses as Record<string, Record<string, unknown>>)) {
        response.headers = { ...header, ...(response.headers as Record<string, unknown> | undefined) };
      }
    }
  }
  return paths;
}
