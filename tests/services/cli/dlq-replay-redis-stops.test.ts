import { replayDeadLetters } from '../../../services/cli/commands/dlq';
import type { Runtime } from '../../../services/core/runtime';
import { startRedis, type RedisServer } from '../../harness/redis';
import { useSharedServices } from '../../harness/shared';
import { createEngineFixture, submission, type EngineFixture } from '../engine/fixture';

/** The relay's wait for one hand-off (5 s by default), shortened so the old cost shows in seconds. */
const HAND_OFF_TIMEOUT_MS = 1_500;
const DEAD_LETTERS = 8;

interface Outcome {
  id: string;
  replayed: boolean;
  outcome: string;
  error?: string;
}

describe('platform dlq replay when Redis stops answering mid-way (SIGSTOP)', () => {
  let redis: RedisServer;
  let fixture: EngineFixture;

  beforeAll(async () => {
    redis = await startRedis();
    const shared = await useSharedServices();
    fixture = await createEngineFixture({
      servers: { databaseUrl: shared.databaseUrl, redisUrl: redis.url, redisPrefix: `{dlq-redis-stops-${Date.now()}}` },
      core: { relay: { sweepGraceMs: 300, lostRunningAfterMs: 3_000, enqueueTimeoutMs: HAND_OFF_TIMEOUT_MS } },
    });
  });
  afterAll(async () => {
    redis?.resume();
    await fixture?.close();
    await redis?.destroy();
  });

  it('stops handing over at the first job Redis does not take, leaves the rest dead-lettered, and says which is which, exit 1', async () => {
    const ids: string[] = [];
    for (let index = 0; index < DEAD_LETTERS; index += 1) {
      const { job } = await fixture.core.jobs.submit(submission({ ownerId: fixture.ownerId, type: 'echo', input: { payload: index } }));
      await fixture.query("UPDATE jobs SET status = 'failed', attempts = max_attempts, error = 'boom', finished_at = now(), updated_at = now() WHERE id = $1", [job.id]);
      ids.push(job.id);
    }
    // Redis stops once the first job is handed over, as when its process is stopped mid-replay.
    let replays = 0;
    const core: Runtime = {
      ...fixture.core,
      admin: {
        ...fixture.core.admin,
        async replay(id, log, options) {
          const replayed = await fixture.core.admin.replay(id, log, options);
          replays += 1;
          if (replays === 1) redis.pause();
          return replayed;
        },
      },
    };
    let output = '';
    const written = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      output += String(chunk);
      return true;
    });
    const started = Date.now();
    let code: number;
    try {
      code = await replayDeadLetters([], { all: true, json: true })(core);
    } finally {
      written.mockRestore();
    }
    const elapsedMs = Date.now() - started;
    redis.resume();

    const printed = JSON.parse(output) as { counts: Record<string, number>; outcomes: Outcome[] };
    expect(code).toBe(1);
    const [first, second, ...rest] = printed.outcomes;
    expect(first).toEqual({ id: expect.any(String), replayed: true, outcome: 'replayed' });
    expect(second).toEqual({ id: expect.any(String), replayed: true, outcome: 'queued', error: 'Redis did not take it: queued in PostgreSQL, the relay hands it over once Redis answers' });
    expect(rest).toHaveLength(DEAD_LETTERS - 2);
    for (const outcome of rest) {
      expect(outcome).toEqual({ id: expect.any(String), replayed: false, outcome: 'left', error: expect.stringMatching(/^not tried, still dead-lettered: Redis did not take an earlier job/) });
    }
    expect(printed.counts).toEqual({ replayed: 1, queued: 1, skipped: 0, failed: 0, left: DEAD_LETTERS - 2 });
    // One hand-off waited out, not one per job.
    expect(elapsedMs).toBeLessThan(3 * HAND_OFF_TIMEOUT_MS);

    const statuses = new Map(
      (await fixture.query<{ id: string; status: string }>('SELECT id, status FROM jobs WHERE id = ANY($1::uuid[])', [ids])).map((row) => [row.id, row.status]),
    );
    expect(statuses.get(first!.id)).toBe('queued');
    expect(statuses.get(second!.id)).toBe('queued');
    for (const outcome of rest) expect(statuses.get(outcome.id)).toBe('failed');
  }, 60_000);
});
