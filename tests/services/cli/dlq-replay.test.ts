import { Client } from 'pg';
import { replayDeadLetters, REPLAY_LOCK_KEY } from '../../../services/cli/commands/dlq';
import { ChangedSinceReadError } from '../../../services/core/errors';
import type { Runtime } from '../../../services/core/runtime';
import { createEngineFixture, submission, type EngineFixture } from '../engine/fixture';
import { cliEnvFor, platform } from './platform-cli';

interface Outcome {
  id: string;
  replayed: boolean;
  outcome: string;
  error?: string;
}

describe('platform dlq replay', () => {
  let fixture: EngineFixture;
  let cliEnv: Record<string, string>;

  beforeAll(async () => {
    fixture = await createEngineFixture();
    cliEnv = cliEnvFor(fixture.env);
  });
  afterAll(() => fixture?.close());
  // Each test sees only its own dead letters (--all replays every one).
  beforeEach(() => fixture.query("UPDATE jobs SET status = 'succeeded' WHERE status = 'failed'"));

  /** No worker runs here: a replayed job stays queued, and what fails it again is the test (a move, like the worker's: updated_at too). */
  async function failForGood(id: string): Promise<void> {
    await fixture.query("UPDATE jobs SET status = 'failed', attempts = max_attempts, error = 'boom', finished_at = now(), updated_at = now() WHERE id = $1", [id]);
  }

  /** Runs the command in this process, its standard output read as the JSON it printed. */
  async function replayInProcess(core: Runtime, ids: string[], options: { all?: boolean }): Promise<{ code: number; printed: { asOf: string; counts: Record<string, number>; outcomes: Outcome[] } }> {
    let output = '';
    const written = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      output += String(chunk);
      return true;
    });
    try {
      const code = await replayDeadLetters(ids, { ...options, json: true })(core);
      return { code, printed: JSON.parse(output) as { asOf: string; counts: Record<string, number>; outcomes: Outcome[] } };
    } finally {
      written.mockRestore();
    }
  }

  async function asRead(id: string): Promise<{ status: 'failed' | 'cancelled'; updatedUs: number }> {
    return fixture.one<{ status: 'failed' | 'cancelled'; updatedUs: number }>('SELECT status, (extract(epoch FROM updated_at) * 1000000)::bigint AS "updatedUs" FROM jobs WHERE id = $1', [id]);
  }

  async function deadLetter(payload: string): Promise<string> {
    const { job } = await fixture.core.jobs.submit(submission({ ownerId: fixture.ownerId, type: 'echo', input: { payload } }));
    await failForGood(job.id);
    return job.id;
  }

  async function replays(ids: string[]): Promise<number> {
    const [row] = await fixture.query<{ n: number }>("SELECT count(*)::int AS n FROM job_events WHERE job_id = ANY($1::uuid[]) AND from_status = 'failed' AND to_status = 'queued'", [ids]);
    return row?.n ?? 0;
  }

  it('leaves a dead letter that was replayed elsewhere and failed again after it began: replaying it again would run it twice', async () => {
    const [kept, raced] = [await deadLetter('kept'), await deadLetter('raced')];
    // Between this replay's listing and its turn, another operator (or the console) replays `raced`, and it fails again.
    const core: Runtime = {
      ...fixture.core,
      admin: {
        ...fixture.core.admin,
        async deadLetters(query) {
          const page = await fixture.core.admin.deadLetters(query);
          await fixture.core.admin.replay(raced);
          await failForGood(raced);
          return page;
        },
      },
    };
    const { code, printed } = await replayInProcess(core, [], { all: true });
    expect(code).toBe(1);
    expect(printed.outcomes.sort((a, b) => Number(a.id === raced) - Number(b.id === raced))).toEqual([
      { id: kept, replayed: true, outcome: 'replayed' },
      { id: raced, replayed: false, outcome: 'skipped', error: expect.stringMatching(/^failed again at \S+, after this replay began: someone replayed it meanwhile/) },
    ]);
    expect(printed.asOf).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    // One replay each: the other operator's for `raced`, this one's for `kept`.
    expect(await replays([kept])).toBe(1);
    expect(await replays([raced])).toBe(1);
    expect((await fixture.one<{ status: string }>('SELECT status FROM jobs WHERE id = $1', [raced])).status).toBe('failed');
  });

  it('skips a dead letter that a console replay, a run and a new failure moved between its read and its replay, instead of running it twice', async () => {
    const [kept, raced] = [await deadLetter('kept'), await deadLetter('raced late')];
    // Landing after this replay read the job, and before its own replay moves it.
    const core: Runtime = {
      ...fixture.core,
      admin: {
        ...fixture.core.admin,
        async replay(id, log, options) {
          if (id === raced) {
            await fixture.core.admin.replay(raced);
            await failForGood(raced);
          }
          return fixture.core.admin.replay(id, log, options);
        },
      },
    };
    const { code, printed } = await replayInProcess(core, [kept, raced], {});
    expect(code).toBe(1);
    expect(printed.outcomes).toEqual([
      { id: kept, replayed: true, outcome: 'replayed' },
      { id: raced, replayed: false, outcome: 'skipped', error: expect.stringMatching(/^failed again at \S+, after this replay began: someone replayed it meanwhile/) },
    ]);
    expect(printed.counts).toEqual({ replayed: 1, queued: 0, skipped: 1, failed: 0, left: 0 });
    // The console's replay only: this one's did not move it.
    expect(await replays([raced])).toBe(1);
    expect((await fixture.one<{ status: string }>('SELECT status FROM jobs WHERE id = $1', [raced])).status).toBe('failed');
  });

  describe('core.admin.replay with the job as read (asRead)', () => {
    it('replays a job still as read, and refuses one moved since with ChangedSinceReadError, moving nothing', async () => {
      const id = await deadLetter('as read');
      const read = await asRead(id);
      await fixture.core.admin.replay(id);
      await failForGood(id);
      const refused = await fixture.core.admin.replay(id, undefined, { asRead: read }).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(ChangedSinceReadError);
      expect((refused as Error).message).toMatch(/^The job changed after it was read: it was failed, it is failed \(last changed \S+\); not replayed\.$/);
      expect(await replays([id])).toBe(1);
      const replayed = await fixture.core.admin.replay(id, undefined, { asRead: await asRead(id) });
      expect(replayed).toEqual({ job: expect.objectContaining({ id, status: 'queued' }), handedOver: true });
      expect(await replays([id])).toBe(2);
    });

    it('says a job in another state now changed since it was read; without asRead, a replay of it is the conflict it was', async () => {
      const id = await deadLetter('queued since');
      const read = await asRead(id);
      await fixture.core.admin.replay(id);
      await expect(fixture.core.admin.replay(id, undefined, { asRead: read })).rejects.toBeInstanceOf(ChangedSinceReadError);
      await expect(fixture.core.admin.replay(id)).rejects.toThrow('Only failed or cancelled jobs can be replayed; this one is queued.');
    });

    it('leaves a fan-out job moved since it was read as it is, tasks and all', async () => {
      const { job } = await fixture.core.jobs.submit(submission({ ownerId: fixture.ownerId, type: 'echo.batch', input: { count: 3 } }));
      await fixture.core.jobs.cancel(fixture.ownerId, job.id);
      const read = await asRead(job.id);
      // Its owner retried it and cancelled it again: cancelled as it was, but not the job that was read.
      await fixture.core.jobs.retry(fixture.ownerId, job.id);
      await fixture.core.jobs.cancel(fixture.ownerId, job.id);
      const tasksQueued = async () => (await fixture.one<{ n: number }>("SELECT count(*)::int AS n FROM jobs WHERE parent_id = $1 AND status = 'queued'", [job.id])).n;
      await expect(fixture.core.admin.replay(job.id, undefined, { asRead: read })).rejects.toBeInstanceOf(ChangedSinceReadError);
      expect(await tasksQueued()).toBe(0);
      expect((await fixture.one<{ status: string }>('SELECT status FROM jobs WHERE id = $1', [job.id])).status).toBe('cancelled');
      await fixture.core.admin.replay(job.id, undefined, { asRead: await asRead(job.id) });
      expect(await tasksQueued()).toBe(3);
    });
  });

  it('refuses at once while another replay runs, naming its session, and replays nothing', async () => {
    const id = await deadLetter('waits');
    const other = new Client({ connectionString: fixture.env.DATABASE_URL });
    await other.connect();
    try {
      await other.query('SELECT pg_advisory_lock($1)', [REPLAY_LOCK_KEY]);
      const [{ pid }] = (await other.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows as [{ pid: number }];
      const refused = await platform(['dlq', 'replay', '--all', '--json'], cliEnv);
      expect({ code: refused.code, stdout: refused.stdout, stderr: JSON.parse(refused.stderr) }).toEqual({
        code: 1,
        stdout: '',
        stderr: { error: { kind: 'conflict', message: expect.stringMatching(new RegExp(`^another platform dlq replay is running \\(PostgreSQL session ${pid}, since \\S+\\): let it end, then see what is left with platform dlq list$`)), exitCode: 1 } },
      });
      expect(await replays([id])).toBe(0);
    } finally {
      await other.end();
    }
    const replayed = await platform(['dlq', 'replay', '--all', '--json'], cliEnv);
    expect(replayed.code).toBe(0);
    expect((JSON.parse(replayed.stdout) as { outcomes: Outcome[] }).outcomes).toEqual([{ id, replayed: true, outcome: 'replayed' }]);
  });

  it('two operators replaying the same set at once replay each job once between them', async () => {
    const ids = await Promise.all(Array.from({ length: 10 }, (_, index) => deadLetter(`pair ${index}`)));
    const runs = await Promise.all([platform(['dlq', 'replay', '--all', '--json'], cliEnv), platform(['dlq', 'replay', '--all', '--json'], cliEnv)]);
    // The second either found the first holding the replay (refused) or began after it ended (nothing left to replay).
    const replayed = runs.flatMap((run) => (run.stdout ? (JSON.parse(run.stdout) as { outcomes: Outcome[] }).outcomes : [])).filter((outcome) => outcome.replayed);
    expect(replayed.map((outcome) => outcome.id).sort()).toEqual([...ids].sort());
    expect(await replays(ids)).toBe(ids.length);
  });

  it('replays a job named twice once, and leaves a cancelled job, which is no dead letter, to jobs retry', async () => {
    const dead = await deadLetter('named twice');
    const { job: cancelled } = await fixture.core.jobs.submit(submission({ ownerId: fixture.ownerId, type: 'echo', input: { payload: 'cancelled' } }));
    await fixture.core.jobs.cancel(fixture.ownerId, cancelled.id);
    const run = await platform(['dlq', 'replay', dead, cancelled.id, dead.toUpperCase(), '--json'], cliEnv);
    expect(run.code).toBe(1);
    expect((JSON.parse(run.stdout) as { outcomes: Outcome[] }).outcomes).toEqual([
      { id: dead, replayed: true, outcome: 'replayed' },
      { id: cancelled.id, replayed: false, outcome: 'skipped', error: 'not a dead letter: it was cancelled (platform jobs retry re-queues it)' },
    ]);
    expect(await replays([dead])).toBe(1);
    expect((await fixture.one<{ status: string }>('SELECT status FROM jobs WHERE id = $1', [cancelled.id])).status).toBe('cancelled');
  });
  it('--all with --type and --error replays only what dlq list shows with the same flags: the fixed cause, not one client\'s bad input of the same type', async () => {
    const failWith = async (type: 'echo' | 'sleep', input: Record<string, unknown>, error: string) => {
      const { job } = await fixture.core.jobs.submit(submission({ ownerId: fixture.ownerId, type, input }));
      await fixture.query("UPDATE jobs SET status = 'failed', attempts = max_attempts, error = $2, finished_at = now(), updated_at = now() WHERE id = $1", [job.id, error]);
      return job.id;
    };
    const fixedFirst = await failWith('echo', { payload: 1 }, 'object files/a/b not found');
    const badInput = await failWith('echo', { payload: 2 }, 'a quoted field is not terminated before the end of the file (line 3)');
    const otherType = await failWith('sleep', { ms: 1 }, 'object files/a/c not found');
    const fixedLast = await failWith('echo', { payload: 3 }, 'object files/a/d not found');
    const filter = ['--type', 'echo', '--error', 'not found'];

    type Page = { items: { id: string }[]; nextCursor: string | null };
    const first = JSON.parse((await platform(['dlq', 'list', ...filter, '--limit', '1', '--json'], cliEnv)).stdout) as Page;
    expect(first.items.map((job) => job.id)).toEqual([fixedLast]);
    const second = JSON.parse((await platform(['dlq', 'list', ...filter, '--limit', '1', '--cursor', first.nextCursor as string, '--json'], cliEnv)).stdout) as Page;
    expect(second).toEqual({ items: [expect.objectContaining({ id: fixedFirst })], nextCursor: null });

    const run = await platform(['dlq', 'replay', '--all', ...filter, '--json'], cliEnv);
    expect(run.code).toBe(0);
    expect((JSON.parse(run.stdout) as { outcomes: Outcome[] }).outcomes.map(({ id, outcome }) => ({ id, outcome }))).toEqual([
      { id: fixedLast, outcome: 'replayed' },
      { id: fixedFirst, outcome: 'replayed' },
    ]);
    const statuses = await fixture.query<{ id: string; status: string }>('SELECT id, status FROM jobs WHERE id = ANY($1::uuid[])', [[fixedFirst, badInput, otherType, fixedLast]]);
    expect(Object.fromEntries(statuses.map((row) => [row.id, row.status]))).toEqual({ [fixedFirst]: 'queued', [fixedLast]: 'queued', [badInput]: 'failed', [otherType]: 'failed' });

    // A filter or a limit beside named jobs would read as applied to them: refused, nothing moved.
    const named = await platform(['dlq', 'replay', badInput, '--type', 'echo'], cliEnv);
    expect({ code: named.code, stderr: named.stderr }).toEqual({ code: 2, stderr: expect.stringContaining('--type, --error and --limit go with --all') });
    const unknownType = await platform(['dlq', 'replay', '--all', '--type', 'ecko'], cliEnv);
    expect({ code: unknownType.code, stderr: unknownType.stderr }).toEqual({ code: 2, stderr: expect.stringContaining('--type must be one of') });
    const emptyError = await platform(['dlq', 'list', '--error', ''], cliEnv);
    expect({ code: emptyError.code, stderr: emptyError.stderr }).toEqual({ code: 2, stderr: expect.stringContaining('--error must be a text') });
    expect(await replays([badInput, otherType])).toBe(0);
  });
});
