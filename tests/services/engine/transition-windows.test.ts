/**
 * The worker's delivery reads and state writes wait a few milliseconds for company while
 * the worker has spare slots (jobs arrive a fetch apart), and not at all while most slots
 * are busy (batches then form behind the statement in flight, and a wait would only hold
 * the slots longer).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { TransitionWriter } from '../../../services/core/jobs/transitions';
import { createEngineFixture, submission, type EngineFixture } from './fixture';

describe('transition writer: waiting for company depends on the worker\'s load', () => {
  let fx: EngineFixture;

  beforeAll(async () => {
    fx = await createEngineFixture();
  });
  afterAll(async () => {
    await fx?.close();
  });

  /** Statements the writer sends to the batch pool while `work` runs. */
  async function statementsDuring(work: () => Promise<unknown>): Promise<number> {
    const query = jest.spyOn(fx.core.batchPool, 'query');
    try {
      await work();
      return query.mock.calls.length;
    } finally {
      query.mockRestore();
    }
  }

  async function submitted(count: number): Promise<string[]> {
    const jobs = await Promise.all(Array.from({ length: count }, (_, index) => fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload: index } }))));
    return jobs.map(({ job }) => job.id);
  }

  /** Deliveries asked a couple of milliseconds apart, as BullMQ hands over the jobs of one hand-off. */
  async function readApart(writer: TransitionWriter, ids: string[]): Promise<unknown[]> {
    const reads: Promise<unknown>[] = [];
    for (const id of ids) {
      reads.push(writer.delivery(id));
      await delay(2);
    }
    return Promise.all(reads);
  }

  it('with spare slots, reads asked within the window go out as one statement and each gets its row', async () => {
    const ids = await submitted(4);
    const writer = new TransitionWriter({ batchPool: fx.core.batchPool, generalPool: fx.core.generalPool, log: fx.log, saturated: () => false }, { readWindowMs: 200 });
    let rows: unknown[] = [];
    const statements = await statementsDuring(async () => {
      rows = await readApart(writer, ids);
    });
    await writer.close();
    expect(statements).toBe(1);
    expect(rows.map((row) => (row as { id: string }).id)).toEqual(ids);
  });

  it('with most slots busy, each read goes out without waiting', async () => {
    const ids = await submitted(4);
    const writer = new TransitionWriter({ batchPool: fx.core.batchPool, generalPool: fx.core.generalPool, log: fx.log, saturated: () => true }, { readWindowMs: 200 });
    const statements = await statementsDuring(() => readApart(writer, ids));
    await writer.close();
    expect(statements).toBeGreaterThan(1);
  });

  it('with spare slots, state writes recorded within the window commit together', async () => {
    const ids = await submitted(3);
    const writer = new TransitionWriter({ batchPool: fx.core.batchPool, generalPool: fx.core.generalPool, log: fx.log, saturated: () => false }, { windowMs: 200 });
    let applied: boolean[] = [];
    const statements = await statementsDuring(async () => {
      const outcomes: Promise<boolean>[] = [];
      for (const id of ids) {
        outcomes.push(writer.record({ event: 'start', jobId: id, attempt: 1, at: Date.now(), from: 'queued' }));
        await delay(2);
      }
      applied = await Promise.all(outcomes);
    });
    await writer.close();
    expect(applied).toEqual([true, true, true]);
    expect(statements).toBe(1);
  });
});
