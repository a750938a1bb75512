import { Router } from 'express';
import { API_PREFIX } from '../../contract';
import type { JobTypeDescription } from '../job-type-catalog';

/** GET /v1/job-types: public, and serialised once since the registry is fixed for the process's life. */
export function jobTypeRoutes(catalog: JobTypeDescription[]): Router {
  const router = Router();
  const body = JSON.stringify({ items: catalog });
  router.get(`${API_PREFIX}/job-types`, (_req, res) => {
    res.type('application/json').send(body);
  });
  return router;
}
