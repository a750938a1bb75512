import type { Pool } from 'pg';
import { listTaskOutcomes } from '../core/db/fanouts';
import type { Keyset } from '../core/db/jobs';
import type { TaskOutcome } from './processor';

/** Tasks a reduce step reads per round trip. */
const TASK_PAGE_SIZE = 1_000;

/**
 * A fan-out job's tasks with their outcomes, in creation order, read a page at a time
 * (keyset paging), so a reduce step over many tasks never holds them all. Stops with the
 * signal's reason once the job is aborted. A read by parent id, not a primary-key lookup, so
 * it runs on the general pool (see createGeneralPool).
 */
export async function* readTaskOutcomes(generalPool: Pool, parentId: string, signal: AbortSignal): AsyncIterable<TaskOutcome> {
  let after: Keyset | undefined;
  for (;;) {
    signal.throwIfAborted();
    const rows = await listTaskOutcomes(generalPool, parentId, TASK_PAGE_SIZE, after);
    for (const row of rows) {
      yield { id: row.id, input: row.input, status: row.status, result: row.result, resultFileId: row.result_file_id, error: row.error };
    }
    const last = rows.at(-1);
    if (!last || rows.length < TASK_PAGE_SIZE) return;
    after = { at: last.created_us, id: last.id };
  }
}
