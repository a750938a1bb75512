import { Router, type RequestHandler } from 'express';
import { API_PREFIX } from '../../contract';
import type { JobAdmin } from '../../core/jobs/types';
import { requireRole } from '../middleware/authenticate';
import { DeadLetterQuery } from '../schemas';
import { parseOrThrow, requireUuid } from '../validation';

/** Operator endpoints; any authenticated caller without the admin role gets 403. */
export function adminRoutes({ admin, authenticated }: { admin: JobAdmin; authenticated: RequestHandler }): Router {
  const router = Router();
  router.use(`${API_PREFIX}/admin`, authenticated, requireRole('admin'));

  router.get(`${API_PREFIX}/admin/queues`, async (_req, res) => {
    res.json(await admin.queueStats());
  });

  router.post(`${API_PREFIX}/admin/queues/pause`, async (_req, res) => {
    await admin.pause();
    res.status(204).end();
  });

  router.post(`${API_PREFIX}/admin/queues/resume`, async (_req, res) => {
    await admin.resume();
    res.status(204).end();
  });

  router.get(`${API_PREFIX}/admin/dlq`, async (req, res) => {
    res.json(await admin.deadLetters(parseOrThrow(DeadLetterQuery, req.query, 'query', 'query')));
  });

  router.post(`${API_PREFIX}/admin/dlq/:id/replay`, async (req, res) => {
    const job = await admin.replay(requireUuid(req.params.id, 'job'));
    res.status(202).location(`${API_PREFIX}/jobs/${job.id}`).json(job);
  });

  return router;
}
