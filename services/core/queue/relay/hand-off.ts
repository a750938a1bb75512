import { MicroBatcher } from '../../batcher';
import type { Logger } from '../../logger';
import type { EnqueueRow } from './entries';
import type { Enqueuer } from './enqueue';
import type { ResolvedRelayOptions } from './options';

/** Rows handed to BullMQ per addBulk at most, and addBulks of handed-off rows running at once. */
const HAND_OFF_BATCH = 1_000;
const HAND_OFF_IN_FLIGHT = 2;

/**
 * The submit path's hand-off: rows just committed go to BullMQ without making anyone wait,
 * gathered for handOffWindowMs into fewer, larger addBulks. At a moderate rate each submit
 * batch holds a job or two, and an addBulk, the worker's wake-up and its state writes per
 * job or two cost several times what they cost per job in bulk (bench/FINDINGS.md). A row
 * that does not make it (Redis away, this process stopping) stays queued in PostgreSQL and
 * the sweep hands it over.
 */
export class HandOff {
  private readonly batcher: MicroBatcher<EnqueueRow, void>;
  private overflowing = false;

  constructor(
    enqueuer: Pick<Enqueuer, 'enqueue'>,
    private readonly log: Logger,
    private readonly options: Pick<ResolvedRelayOptions, 'handOffWindowMs' | 'maxWaitingHandOffs'>,
  ) {
    this.batcher = new MicroBatcher<EnqueueRow, void>({
      name: 'relay hand-off',
      windowMs: options.handOffWindowMs,
      maxBatch: HAND_OFF_BATCH,
      maxInFlight: HAND_OFF_IN_FLIGHT,
      run: async (rows) => {
        await enqueuer.enqueue(rows, 'submit');
        return rows.map(() => ({ status: 'fulfilled', value: undefined }));
      },
    });
  }

  add(rows: readonly EnqueueRow[]): void {
    if (this.batcher.backlog + rows.length > this.options.maxWaitingHandOffs) {
      // Once per episode: while Redis is away this would be every submit batch.
      if (!this.overflowing) this.log.warn({ waiting: this.batcher.backlog }, 'hand-off backlog full; the relay sweep will hand the jobs over');
      this.overflowing = true;
      return;
    }
    this.overflowing = false;
    for (const row of rows) {
      this.batcher.add(row).catch((error: unknown) => this.log.debug({ err: error, jobId: row.id }, 'hand-off skipped; the relay sweep will hand this job over'));
    }
  }

  close(): Promise<void> {
    return this.batcher.close();
  }
}
