import { Router, type RequestHandler } from 'express';
import { API_PREFIX, IDEMPOTENCY_KEY_HEADER, IdempotencyKey, ListJobsQuery, SubmitJobBody } from '../../contract';
import type { JobService } from '../../core/jobs/types';
import type { Logger } from '../../core/logger';
import type { Lifecycle } from '../dependencies';
import { callerId } from '../middleware/authenticate';
import { parseOrThrow, requireUuid } from '../validation';
import { jobEvents } from './job-events';

export interface JobRoutesOptions {
  jobs: JobService;
  log: Logger;
  lifecycle: Lifecycle;
  json: RequestHandler;
  authenticated: RequestHandler;
  submitLimit: RequestHandler;
}

/**
 * Jobs of the caller. Submit answers 202 both for a new job and for an earlier identical
 * submit returned by its Idempotency-Key: either way the job is accepted and the body is
 * the same, so a client retrying after a lost response cannot tell, and need not.
 */
export function jobRoutes({ jobs, log, lifecycle, json, authenticated, submitLimit }: JobRoutesOptions): Router {
  const router = Router();
  router.use(`${API_PREFIX}/jobs`, authenticated);

  router.post(`${API_PREFIX}/jobs`, submitLimit, json, async (req, res) => {
    const body = parseOrThrow(SubmitJobBody, req.body, 'job submission', 'body');
    const keyHeader = req.headers[IDEMPOTENCY_KEY_HEADER];
    const idempotencyKey = keyHeader === undefined ? undefined : parseOrThrow(IdempotencyKey, keyHeader, 'Idempotency-Key header', 'Idempotency-Key');
    // The use case counts accepted jobs (platform_jobs_submitted_total) once their rows commit.
    // Named fields, not `{ …, ...body, idempotencyKey }`: a spread followed by more properties leaves V8's fast path on Node 20.
    const { job } = await jobs.submit({
      ownerId: callerId(req),
      type: body.type,
      input: body.input,
      maxAttempts: body.maxAttempts,
      priority: body.priority,
      idempotencyKey,
      requestId: req.requestId,
    });
    res.status(202).location(`${API_PREFIX}/jobs/${job.id}`).json(job);
  });

  router.get(`${API_PREFIX}/jobs`, async (req, res) => {
    res.json(await jobs.list(callerId(req), parseOrThrow(ListJobsQuery, req.query, 'query', 'query')));
  });

  router.get(`${API_PREFIX}/jobs/:id`, async (req, res) => {
    res.json(await jobs.get(callerId(req), requireUuid(req.params.id, 'job')));
  });

  router.post(`${API_PREFIX}/jobs/:id/cancel`, async (req, res) => {
    res.json(await jobs.cancel(callerId(req), requireUuid(req.params.id, 'job')));
  });

  router.post(`${API_PREFIX}/jobs/:id/retry`, async (req, res) => {
    const job = await jobs.retry(callerId(req), requireUuid(req.params.id, 'job'));
    res.status(202).location(`${API_PREFIX}/jobs/${job.id}`).json(job);
  });

  router.get(`${API_PREFIX}/jobs/:id/events`, jobEvents({ jobs, lifecycle, log }));

  return router;
}
