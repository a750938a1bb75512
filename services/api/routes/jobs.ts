import type { RequestHandler } from 'express';
import { z } from 'zod';
import { API_PREFIX, findJobType, IDEMPOTENCY_KEY_HEADER, ListJobsQuery, ListTasksQuery, jobsKeptBy, MAX_LIST_RESPONSE_BYTES, queueEntriesOf, SubmitJobBody } from '../../contract';
import type { JobRemoval } from '../../core/jobs/removal';
import type { JobService } from '../../core/jobs/types';
import type { Quotas } from '../../core/quotas';
import { endpoint, IdParams, LOCATION_HEADER, respond, RETRY_AFTER_HEADER, type Endpoint } from '../endpoints';
import { caller, callerId } from '../middleware/authenticate';
import { jobDataAllowance, type JobDataRead, type JobDataReadLimit } from '../middleware/job-data-reads';
import { clientAddressKey } from '../middleware/client-address';
import { jsonBodyBytes } from '../middleware/json-body';
import type { WritesAtOnce } from '../middleware/writes-at-once';
import type { SubmitBytesLimit } from '../middleware/submit-bytes';
import { IdempotencyHeaders, JobPage, JobViewSchema, TaskPage } from '../schemas';
import type { EventStreams } from './job-events';

export interface JobRoutesOptions {
  jobs: JobService;
  streams: EventStreams;
  submitLimit: RequestHandler;
  /** Per user: bytes of submit bodies. */
  submitBytes: SubmitBytesLimit;
  /** Per user: new event streams. */
  streamLimit: RequestHandler;
  /** Per user: bytes of inputs and results sent (pages that include them, and whole jobs). */
  jobDataLimit: JobDataReadLimit;
  quotas: Quotas;
  removal: JobRemoval;
  /** Per user and process: the writes whose cost grows with a fan-out's tasks that run at once. */
  writes: WritesAtOnce;
}

const WRITES_AT_ONCE = respond.tooManyRequests('The caller has as many fan-out submits, cancels, retries and deletes under way on this server as one user may; see Retry-After.');

const LastEventIdHeaders = z.object({
  'last-event-id': z.string().max(64).optional().meta({ description: 'Resume after this event id; anything but an id the stream sent starts afresh.' }),
});

/** A page sends inputs or results only when `include` names them; summaries send neither. */
function pageRead(req: { query: Record<string, unknown> }): JobDataRead {
  return typeof req.query.include === 'string' && req.query.include !== '' ? { upToBytes: MAX_LIST_RESPONSE_BYTES } : 'none';
}

function resumeAfter(lastEventId: string | undefined): number | undefined {
  return lastEventId !== undefined && /^\d{1,15}$/.test(lastEventId) ? Number(lastEventId) : undefined;
}

/** Reads of inputs and results (a page with `include`, a whole job) are limited per user. */
const JOB_DATA_LIMITED = respond.tooManyRequests('The caller has read back its JOB_DATA_READ_BYTES_PER_SECOND of inputs and results this second, or has the most such reads under way; see Retry-After.');

const STREAM_RESPONSES = {
  200: {
    description: 'An event stream: each event\'s `data` is a [JobEvent](#/components/schemas/JobEvent), its `id` the audit row\'s id.',
    content: { 'text/event-stream': { schema: z.string() } },
  },
  400: respond.problem('Last-Event-ID longer than 64 characters.'),
  429: respond.tooManyRequests('The caller holds the most event streams a user (EVENT_STREAMS_PER_USER) or a client address (EVENT_STREAMS_PER_ADDRESS) may; see Retry-After.'),
  503: respond.problem('The server holds its most event streams (EVENT_STREAMS_MAX), or is shutting down; see Retry-After.', RETRY_AFTER_HEADER),
};

/**
 * Jobs of the caller. Submit answers 202 both for a new job and for an earlier identical
 * submit returned by its Idempotency-Key: either way the job is accepted and the body is
 * the same, so a client retrying after a lost response cannot tell, and need not.
 */
export function jobEndpoints({ jobs, streams, submitLimit, submitBytes, streamLimit, jobDataLimit, quotas, removal, writes }: JobRoutesOptions): Endpoint[] {
  return [
    endpoint({
      method: 'post',
      path: `${API_PREFIX}/jobs`,
      operationId: 'submitJob',
      summary: 'Submit a job',
      description:
        'Accepted jobs are never lost. With an Idempotency-Key, a repeat of the same submission returns the same job (also 202); the same key with another body is 409.',
      tag: 'jobs',
      access: 'user',
      before: [submitLimit, submitBytes.beforeBody],
      request: { body: SubmitJobBody, headers: IdempotencyHeaders },
      responses: {
        202: respond.json('The accepted job.', JobViewSchema, LOCATION_HEADER),
        400: respond.problem('Unknown type or invalid input; `errors` lists the fields.'),
        403: respond.problem(
          'The caller would have more than QUOTA_QUEUED_JOBS jobs queued, or keep more than QUOTA_JOBS jobs or QUOTA_JOB_BYTES bytes of inputs and results (a fan-out job counts its tasks).',
        ),
        404: respond.problem('A file the input names is not the caller\'s.'),
        409: respond.problem('The Idempotency-Key was used with another body.'),
        413: respond.problem('Body over the JSON limit.'),
        415: respond.problem('The body is not JSON.'),
        429: respond.tooManyRequests(
          'Over the per-user submit rate (SUBMIT_RATE_LIMIT_PER_SECOND) or bytes of submit bodies a second (SUBMIT_BYTES_PER_SECOND; a body with a Content-Length is refused before it is sent), or, for a fan-out job, as many fan-out submits, cancels, retries and deletes under way on this server as one user may; see Retry-After.',
        ),
      },
      async handle({ body, headers }, req, res) {
        await submitBytes.afterBody(req);
        const queueEntries = queueEntriesOf(body.type, body.input);
        // A submit's body is JSON, so it has a size; a body-less submit fails validation before this.
        const bytes = jsonBodyBytes(req) ?? 0;
        const submit = async () => {
          await quotas.assertCanSubmit(callerId(req), { queueEntries, jobs: jobsKeptBy(body.type, queueEntries), bytes });
          // The use case counts accepted jobs (platform_jobs_submitted_total) once their rows commit.
          return jobs.submit({
            ownerId: callerId(req),
            body,
            idempotencyKey: headers[IDEMPOTENCY_KEY_HEADER],
            requestId: req.requestId,
            sizeBytes: bytes,
          });
        };
        // A fan-out inserts all its tasks in one commit; other submits are one row and never wait for a slot.
        const { job } = await (findJobType(body.type)?.fanOut ? writes.run(callerId(req), submit) : submit());
        res.status(202).location(`${API_PREFIX}/jobs/${job.id}`).json(job);
      },
    }),
    endpoint({
      method: 'get',
      path: `${API_PREFIX}/jobs`,
      operationId: 'listJobs',
      summary: 'The caller\'s jobs, newest first',
      description:
        'Items are summaries (no input or result) unless `include` names them; a page with `include` also ends early rather than exceed 4 MiB, or what is left of the caller\'s JOB_DATA_READ_BYTES_PER_SECOND this second (one item at least). The whole job is `GET /v1/jobs/{id}`.',
      tag: 'jobs',
      access: 'user',
      before: [jobDataLimit(pageRead)],
      request: { query: ListJobsQuery },
      responses: {
        200: respond.json('One page; pass nextCursor back as cursor for the next.', JobPage),
        400: respond.problem('Invalid query.'),
        429: JOB_DATA_LIMITED,
      },
      async handle({ query }, req, res) {
        res.json(await jobs.list(callerId(req), query, jobDataAllowance(req)));
      },
    }),
    endpoint({
      method: 'get',
      path: `${API_PREFIX}/jobs/events`,
      operationId: 'streamAllJobEvents',
      summary: 'Server-Sent Events of all the caller\'s jobs, tasks of fan-out jobs included',
      description:
        'One connection for a whole job list. Each event\'s `data` is a JobEvent (`parentId` set on a task\'s). With Last-Event-ID, the events after it are sent first. The server ends the stream after EVENT_STREAM_MAX_SECONDS, and when it shuts down, with a `retry:` hint: reconnect with Last-Event-ID. It also ends the stream, without the hint, as soon as its access token is revoked (sign-out, password reset, role change).',
      tag: 'jobs',
      access: 'user',
      before: [streamLimit],
      request: { headers: LastEventIdHeaders },
      responses: STREAM_RESPONSES,
      async handle({ headers }, req, res) {
        await streams.stream(res, { caller: caller(req), address: clientAddressKey(req), source: { kind: 'owner' }, after: resumeAfter(headers['last-event-id']) });
      },
    }),
    endpoint({
      method: 'get',
      path: `${API_PREFIX}/jobs/:id`,
      operationId: 'getJob',
      summary: 'A job, with its input and result',
      tag: 'jobs',
      access: 'user',
      before: [jobDataLimit(() => 'whole')],
      request: { params: IdParams },
      responses: { 200: respond.json('The job.', JobViewSchema), 404: respond.problem('No such job of the caller.'), 429: JOB_DATA_LIMITED },
      async handle({ params }, req, res) {
        res.json(await jobs.get(callerId(req), params.id));
      },
    }),
    endpoint({
      method: 'post',
      path: `${API_PREFIX}/jobs/:id/cancel`,
      operationId: 'cancelJob',
      summary: 'Cancel a job (a running job is signalled to abort)',
      tag: 'jobs',
      access: 'user',
      request: { params: IdParams },
      responses: {
        200: respond.json('The job.', JobViewSchema),
        404: respond.problem('No such job of the caller.'),
        409: respond.problem('The job is already terminal.'),
        429: WRITES_AT_ONCE,
      },
      async handle({ params }, req, res) {
        res.json(await writes.run(callerId(req), () => jobs.cancel(callerId(req), params.id, req.log)));
      },
    }),
    endpoint({
      method: 'post',
      path: `${API_PREFIX}/jobs/:id/retry`,
      operationId: 'retryJob',
      summary: 'Re-queue a failed or cancelled job',
      tag: 'jobs',
      access: 'user',
      request: { params: IdParams },
      responses: {
        202: respond.json('The re-queued job.', JobViewSchema, LOCATION_HEADER),
        404: respond.problem('No such job of the caller.'),
        409: respond.problem(
          'The job is not failed or cancelled; or it is a task whose fan-out job no longer waits for its tasks (retry the fan-out job itself, which requeues its failed and cancelled tasks).',
        ),
        429: WRITES_AT_ONCE,
      },
      async handle({ params }, req, res) {
        const job = await writes.run(callerId(req), () => jobs.retry(callerId(req), params.id));
        res.status(202).location(`${API_PREFIX}/jobs/${job.id}`).json(job);
      },
    }),
    endpoint({
      method: 'get',
      path: `${API_PREFIX}/jobs/:id/tasks`,
      operationId: 'listJobTasks',
      summary: 'A fan-out job\'s tasks, in creation order, with its counts per task status',
      tag: 'jobs',
      access: 'user',
      request: { params: IdParams, query: ListTasksQuery },
      responses: {
        200: respond.json('One page of tasks and the counts; pass nextCursor back as cursor for the next.', TaskPage),
        400: respond.problem('Invalid query.'),
        404: respond.problem('No such job of the caller, or the job does not fan out.'),
      },
      async handle({ params, query }, req, res) {
        res.json(await jobs.tasks(callerId(req), params.id, query));
      },
    }),
    endpoint({
      method: 'get',
      path: `${API_PREFIX}/jobs/:id/events`,
      operationId: 'streamJobEvents',
      summary: 'Server-Sent Events of the job\'s state changes, and of its tasks\' when it fans out',
      description:
        'Each event\'s `data` is a JobEvent and its `id` the audit row\'s id. Sends the job\'s events so far (after Last-Event-ID when given), then live ones; ends after the job\'s terminal state. The server also ends it after EVENT_STREAM_MAX_SECONDS, and when it shuts down, with a `retry:` hint: reconnect with Last-Event-ID. It also ends the stream, without the hint, as soon as its access token is revoked (sign-out, password reset, role change).',
      tag: 'jobs',
      access: 'user',
      before: [streamLimit],
      request: { params: IdParams, headers: LastEventIdHeaders },
      responses: { ...STREAM_RESPONSES, 404: respond.problem('No such job of the caller.') },
      async handle({ params, headers }, req, res) {
        await streams.stream(res, { caller: caller(req), address: clientAddressKey(req), source: { kind: 'job', jobId: params.id }, after: resumeAfter(headers['last-event-id']) });
      },
    }),
    endpoint({
      method: 'delete',
      path: `${API_PREFIX}/jobs/:id`,
      operationId: 'deleteJob',
      summary: 'Delete a finished job with its events and result file (a fan-out job with its tasks)',
      description:
        'A fan-out job is deleted with all its tasks, their events and result files, once it and every task have finished. A task is never deleted alone (409): it goes with its fan-out job.',
      tag: 'jobs',
      access: 'user',
      request: { params: IdParams },
      responses: {
        204: respond.empty('Deleted.'),
        404: respond.problem('No such job of the caller.'),
        409: respond.problem('The job is queued, running or waiting; a fan-out job still has unfinished tasks; or the job is a task.'),
        429: WRITES_AT_ONCE,
      },
      async handle({ params }, req, res) {
        await writes.run(callerId(req), () => removal.remove(callerId(req), params.id, req.log));
        res.status(204).end();
      },
    }),
  ];
}
