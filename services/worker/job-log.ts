import type { DeliveryRow } from '../core/db/jobs';
import type { Logger } from '../core/logger';

/**
 * What the worker and the processor log for one job carries its id and the request id of
 * the call that submitted it (DESIGN: correlation). A child logger per job, as the API has
 * one per request, rather than an AsyncLocalStorage: on Node 20 that turns on promise hooks
 * for every promise the process makes, a tenth of the worker's CPU per job (bench/FINDINGS.md).
 */
export function jobLogger(log: Logger, row: Pick<DeliveryRow, 'id' | 'request_id'>): Logger {
  return log.child(row.request_id === null ? { jobId: row.id } : { jobId: row.id, requestId: row.request_id });
}
