import { z } from 'zod';
import { API_PREFIX } from '../../contract';
import type { Quotas } from '../../core/quotas';
import { endpoint, respond, type Endpoint } from '../endpoints';
import { callerId } from '../middleware/authenticate';

const QuotaUse = z
  .object({ used: z.number().int().nonnegative(), limit: z.number().int().positive() })
  .meta({ id: 'QuotaUse' });

const QuotaUsage = z
  .object({
    jobs: QuotaUse.meta({ description: 'Jobs kept, queued to finished, until deleted or purged (QUOTA_JOBS); a fan-out job counts itself and its tasks.' }),
    jobBytes: QuotaUse.meta({ description: 'Bytes of the inputs and results of the jobs kept, as compact JSON text (QUOTA_JOB_BYTES).' }),
    queuedJobs: QuotaUse.meta({ description: 'Jobs waiting to run (QUOTA_QUEUED_JOBS).' }),
    files: QuotaUse.meta({ description: 'Files stored, uploads and job outputs (QUOTA_FILES).' }),
    storedBytes: QuotaUse.meta({ description: 'Bytes of the files stored (QUOTA_STORED_BYTES).' }),
  })
  .meta({ id: 'QuotaUsage' });

/** GET /v1/usage: where the caller stands against each per-user quota, which a 403 names. */
export function usageEndpoints({ quotas }: { quotas: Pick<Quotas, 'usage'> }): Endpoint[] {
  return [
    endpoint({
      method: 'get',
      path: `${API_PREFIX}/usage`,
      operationId: 'getUsage',
      summary: 'The caller\'s use of each quota',
      description: 'Read when asked. A submit or upload that would pass a limit is refused with 403 naming it; delete finished jobs or files to make room.',
      tag: 'auth',
      access: 'user',
      responses: { 200: respond.json('The caller\'s usage and limits.', QuotaUsage) },
      async handle(_request, req, res) {
        res.json(await quotas.usage(callerId(req)));
      },
    }),
  ];
}
