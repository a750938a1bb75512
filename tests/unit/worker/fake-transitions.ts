import { randomUUID } from 'node:crypto';
import type { DeliveryRow } from '../../../services/core/db/jobs';
import type { WorkerTransition } from '../../../services/core/jobs/transitions';

/** A queued echo job on its first attempt, unless `overrides` say otherwise. */
export function deliveryRow(overrides: Partial<DeliveryRow> = {}): DeliveryRow {
  return {
    id: randomUUID(),
    owner_id: randomUUID(),
    type: 'echo',
    priority: 0,
    input: { payload: 'hello' },
    status: 'queued',
    attempts: 0,
    max_attempts: 3,
    deferrals: 0,
    request_id: null,
    created_ms: Date.now() - 10,
    input_bytes: 20,
    input_inline: true,
    run_started_ms: null,
    ...overrides,
  };
}

/**
 * The transition writer's two calls over memory: delivery rows by id, and every transition
 * recorded, each applied unless `refuse` says the job moved on.
 */
export class FakeTransitions {
  readonly rows = new Map<string, DeliveryRow>();
  readonly recorded: WorkerTransition[] = [];
  refuse: (transition: WorkerTransition) => boolean = () => false;

  add(row: DeliveryRow): DeliveryRow {
    this.rows.set(row.id, row);
    return row;
  }

  async delivery(jobId: string): Promise<DeliveryRow | undefined> {
    return this.rows.get(jobId);
  }

  async record(transition: WorkerTransition): Promise<boolean> {
    this.recorded.push(transition);
    return !this.refuse(transition);
  }

  events(): string[] {
    return this.recorded.map((transition) => transition.event);
  }
}
