import { API_PREFIX } from '../../contract';
import type { JobAdmin } from '../../core/jobs/types';
import { endpoint, IdParams, LOCATION_HEADER, respond, type Endpoint } from '../endpoints';
import { AnyJobSchema, DeadLetterQuery, JobSummaryPage, QueueStatsView } from '../schemas';

/** Operator endpoints; any authenticated caller without the admin role gets 403. */
export function adminEndpoints({ admin }: { admin: JobAdmin }): Endpoint[] {
  return [
    endpoint({
      method: 'get',
      path: `${API_PREFIX}/admin/queues`,
      operationId: 'getQueueStats',
      summary: 'Queue counts per state, PostgreSQL statuses and relay lag',
      tag: 'admin',
      access: 'admin',
      responses: { 200: respond.json('Queue statistics.', QueueStatsView) },
      async handle(_request, _req, res) {
        res.json(await admin.queueStats());
      },
    }),
    endpoint({
      method: 'post',
      path: `${API_PREFIX}/admin/queues/pause`,
      operationId: 'pauseQueue',
      summary: 'Pause the queue (workers stop taking new jobs)',
      tag: 'admin',
      access: 'admin',
      responses: { 204: respond.empty('Paused.') },
      async handle(_request, req, res) {
        await admin.pause(req.log);
        res.status(204).end();
      },
    }),
    endpoint({
      method: 'post',
      path: `${API_PREFIX}/admin/queues/resume`,
      operationId: 'resumeQueue',
      summary: 'Resume the queue',
      tag: 'admin',
      access: 'admin',
      responses: { 204: respond.empty('Resumed.') },
      async handle(_request, req, res) {
        await admin.resume(req.log);
        res.status(204).end();
      },
    }),
    endpoint({
      method: 'get',
      path: `${API_PREFIX}/admin/dlq`,
      operationId: 'listDeadLetters',
      summary: 'Dead-lettered jobs, newest first',
      tag: 'admin',
      access: 'admin',
      request: { query: DeadLetterQuery },
      responses: { 200: respond.json('One page of job summaries.', JobSummaryPage), 400: respond.problem('Invalid query.') },
      async handle({ query }, _req, res) {
        res.json(await admin.deadLetters(query));
      },
    }),
    endpoint({
      method: 'post',
      path: `${API_PREFIX}/admin/dlq/:id/replay`,
      operationId: 'replayDeadLetter',
      summary: 'Replay a dead-lettered job with a fresh attempt budget',
      tag: 'admin',
      resource: 'job',
      access: 'admin',
      request: { params: IdParams },
      responses: {
        202: respond.json('The re-queued job.', AnyJobSchema, LOCATION_HEADER),
        404: respond.problem('No such dead-lettered job.'),
        409: respond.problem(
          'The job is not dead-lettered; or it is a task whose fan-out job no longer waits for its tasks (replay the fan-out job itself, which requeues its failed and cancelled tasks).',
        ),
      },
      async handle({ params }, req, res) {
        const { job } = await admin.replay(params.id, req.log);
        res.status(202).location(`${API_PREFIX}/jobs/${job.id}`).json(job);
      },
    }),
  ];
}
