import type { Pool, QueryConfig } from 'pg';
import type { StoredJobEvent } from '../../../services/core/db/job-events';
import { EventHub } from '../../../services/core/jobs/event-hub';
import { createLogger } from '../../../services/core/logger';
import { call, signUp, startApi, type ApiFixture } from './fixture';

/**
 * A stream subscribes, then reads what it missed. A notification that reached the hub
 * before a subscriber came names rows committed before it, which that read has: handed
 * to the subscriber too, a resumed stream sent them twice (its client had them from the
 * previous connection). The hub's read of notified rows is held here so a subscriber comes
 * between a notification and its read, as it does now and then under load.
 */
describe('the event hub hands a subscriber only what was notified after it came', () => {
  let api: ApiFixture;
  let hub: EventHub | undefined;

  beforeAll(async () => {
    api = await startApi();
  });

  afterAll(async () => {
    await hub?.close();
    await api.close();
  });

  it('a row notified before a subscriber came goes to the earlier subscribers only; the next goes to both', async () => {
    let releaseRead: () => void = () => undefined;
    const readHeld = new Promise<void>((resolve) => (releaseRead = resolve));
    let readStarted: () => void = () => undefined;
    const readRequested = new Promise<void>((resolve) => (readStarted = resolve));
    let holding = true;
    const pool = {
      query: async (config: QueryConfig) => {
        if (holding && config.name === 'job-events.read-written') {
          readStarted();
          await readHeld;
        }
        return api.db.query(config);
      },
    } as unknown as Pool;
    hub = new EventHub({ env: api.env, pool, log: createLogger({ service: 'api', level: 'silent' }) });

    const owner = await signUp(api);
    const early: StoredJobEvent[] = [];
    const late: StoredJobEvent[] = [];
    const subscriber = (into: StoredJobEvent[]) => ({ ownerId: owner.userId, deliver: (event: StoredJobEvent) => into.push(event), end: () => undefined });
    await hub.subscribe(subscriber(early));

    const first = await call<{ id: string }>(api, '/v1/jobs', { token: owner.token, json: { type: 'echo', input: { payload: 1 } } });
    expect(first.status).toBe(202);
    await readRequested;
    await hub.subscribe(subscriber(late));
    holding = false;
    releaseRead();
    await waitUntil(() => early.some((event) => event.jobId === first.body.id));

    const second = await call<{ id: string }>(api, '/v1/jobs', { token: owner.token, json: { type: 'echo', input: { payload: 2 } } });
    await waitUntil(() => early.some((event) => event.jobId === second.body.id) && late.some((event) => event.jobId === second.body.id));
    expect(early.map((event) => event.jobId)).toEqual([first.body.id, second.body.id]);
    expect(late.map((event) => event.jobId)).toEqual([second.body.id]);
  });
});

async function waitUntil(done: () => boolean): Promise<void> {
  for (let tries = 0; tries < 200 && !done(); tries += 1) await new Promise((resolve) => setTimeout(resolve, 25));
  expect(done()).toBe(true);
}
