import { WORKER_HEARTBEAT_FORGET_MS } from '../contract';
import type { Logger } from '../core/logger';
import type { WorkerSlots } from '../core/queue/worker-slots';
import type { JobRunner } from './runner';

/**
 * Looks, at each refresh, whether this process still holds its WORKER_SLOT (recording it
 * again when Redis lost the record), and forgets the slots of workers long gone. A claim leaves the slot of a process still connected to Redis
 * alone; one that could not ask Redis (a server refusing CLIENT LIST) takes it on the slot's
 * promise and hands this process's running jobs out again. Two workers given one WORKER_SLOT
 * is a misconfiguration: said once, loudly, when it happens.
 */
export class SlotCheck {
  private lostTo: string | undefined;

  constructor(
    private readonly runner: Pick<JobRunner, 'holdsSlot' | 'restoreSlot'>,
    private readonly slots: WorkerSlots,
    private readonly log: Logger,
  ) {}

  async refresh(): Promise<void> {
    const standing = await this.runner.holdsSlot();
    if (standing && !standing.held && !standing.holder && (await this.runner.restoreSlot())) {
      this.log.warn('this worker\'s slot was no longer recorded in Redis (restarted empty or failed over): recorded it again');
    }
    if (standing && !standing.held && standing.holder?.workerId !== this.lostTo) {
      this.lostTo = standing.holder?.workerId;
      this.log.error(
        { claimedBy: standing.holder?.workerId ?? null },
        'another worker process claimed this worker slot while this one runs: give each worker a WORKER_SLOT of its own (a pod uid), or none; each start in a shared slot makes the jobs running in the other process run again',
      );
    }
    await this.slots.forgetAbandoned(Date.now() - WORKER_HEARTBEAT_FORGET_MS);
  }
}
