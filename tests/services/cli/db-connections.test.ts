/**
 * PostgresConnectionsNearLimit counts every client of the server, and its runbook had only
 * `platform db locks` to find them with, which lists lock holders and waiters: 82 idle
 * connections of a leaking script (5 of them idle in a transaction that blocked no one)
 * showed as "(none)", and the platform's own pool metrics do not see other clients at all.
 * `platform db connections` names who holds them, with the pids `db cancel` takes.
 */
import { Client } from 'pg';
import { createEngineFixture, type EngineFixture } from '../engine/fixture';
import { platform } from './platform-cli';

interface Group {
  application: string;
  state: string;
  count: number;
  oldest_transaction_seconds: number | null;
  pids: number[];
}

describe('platform db connections (who holds the server\'s connections)', () => {
  let fixture: EngineFixture;
  const leaked: Client[] = [];

  beforeAll(async () => {
    fixture = await createEngineFixture();
  });
  afterAll(async () => {
    await Promise.all(leaked.map((client) => client.end().catch(() => undefined)));
    await fixture?.close();
  });

  it('groups client sessions by application and state, against max_connections, with the pids to end', async () => {
    for (let i = 0; i < 3; i += 1) {
      const client = new Client({ connectionString: fixture.env.DATABASE_URL, application_name: 'leaking-script' });
      client.on('error', () => undefined);
      await client.connect();
      leaked.push(client);
    }
    const [inTransaction] = leaked as [Client];
    await inTransaction.query('BEGIN');
    await inTransaction.query('SELECT 1');
    const pid = (await inTransaction.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid as number;

    const env = { DATABASE_URL: fixture.env.DATABASE_URL, REDIS_URL: fixture.env.REDIS_URL, QUEUE_PREFIX: fixture.env.QUEUE_PREFIX, LOG_LEVEL: 'error' };
    const run = await platform(['db', 'connections', '--json'], env);
    expect(run.code).toBe(0);
    const answer = JSON.parse(run.stdout) as { inUse: number; maxConnections: number; groups: Group[] };
    const ours = answer.groups.filter((group) => group.application === 'leaking-script');
    expect(Object.fromEntries(ours.map((group) => [group.state, group.count]))).toEqual({ idle: 2, 'idle in transaction': 1 });
    expect(ours.find((group) => group.state === 'idle in transaction')?.pids).toEqual([pid]);
    expect(answer.inUse).toBeGreaterThanOrEqual(3);
    expect(answer.maxConnections).toBeGreaterThan(0);

    const text = await platform(['db', 'connections'], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^\d+ of max_connections \d+ in use by clients/);
    expect(text.stdout).toContain('leaking-script');

    const terminated = await platform(['db', 'cancel', String(pid), '--terminate'], env);
    expect(terminated.code).toBe(0);
  });
});
