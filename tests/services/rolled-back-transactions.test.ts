/**
 * Work that lost a race leaves nothing behind: its transaction is rolled back, and nothing
 * else is sent after it. A COMMIT after the work's own ROLLBACK made PostgreSQL warn "there
 * is no transaction in progress" into its log at every lost race (a cancel beside a retry, a
 * refresh token presented twice), a warning an operator would have to learn to ignore.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { SessionRepository } from '../../services/core/db/sessions';
import { inTransaction } from '../../services/core/db/transaction';
import { useSharedServices } from '../harness/shared';

let pool: Pool;
const notices: string[] = [];

beforeAll(async () => {
  const { databaseUrl } = await useSharedServices();
  pool = new Pool({ connectionString: databaseUrl, max: 1, idleTimeoutMillis: 0 });
  pool.on('connect', (client) => client.on('notice', (notice: { severity?: string; message?: string }) => notices.push(`${notice.severity ?? ''} ${notice.message ?? ''}`)));
  await pool.query('CREATE TEMP TABLE IF NOT EXISTS marks (id int PRIMARY KEY)');
});

beforeEach(() => {
  notices.length = 0;
});

afterAll(async () => {
  await pool.end();
});

describe('inTransaction', () => {
  it('rolls back work whose answer is not to be kept, answers it, and PostgreSQL has nothing to warn of', async () => {
    const answer = await inTransaction(
      pool,
      async (client) => {
        await client.query('INSERT INTO marks VALUES (1)');
        return 'lost the race';
      },
      { commitIf: (result) => result !== 'lost the race' },
    );
    expect(answer).toBe('lost the race');
    expect((await pool.query('SELECT id FROM marks')).rows).toEqual([]);
    expect(notices).toEqual([]);
  });

  it('commits by default', async () => {
    await inTransaction(pool, (client) => client.query('INSERT INTO marks VALUES (2)'));
    expect((await pool.query('SELECT id FROM marks WHERE id = 2')).rows).toEqual([{ id: 2 }]);
    expect(notices).toEqual([]);
  });
});

describe('SessionRepository.rotate', () => {
  it('refuses a refresh token exchanged long ago, changes nothing of its session, and PostgreSQL has nothing to warn of', async () => {
    const sessions = new SessionRepository(pool);
    const userId = randomUUID();
    const sessionId = randomUUID();
    const hash = (token: string) => createHash('sha256').update(token).digest();
    const accessExpiresAt = new Date(Date.now() + 60_000);
    await pool.query("INSERT INTO users (id, email, password_hash) VALUES ($1, $2, 'x')", [userId, `${userId}@example.test`]);
    expect(await sessions.create({ id: sessionId, userId, accessExpiresAt, passwordHash: 'x', role: 'user' }, { hash: hash('first'), expiresAt: new Date(Date.now() + 3_600_000) })).toBe(true);
    // Exchanged a minute ago, and its successor used since: presenting it again is reuse.
    await pool.query("UPDATE refresh_tokens SET rotated_at = now() - interval '1 minute' WHERE token_hash = $1", [hash('first')]);
    await pool.query("INSERT INTO refresh_tokens (token_hash, session_id, expires_at, rotated_at) VALUES ($1, $2, now() + interval '1 hour', now() - interval '30 seconds')", [hash('second'), sessionId]);

    const later = new Date(Date.now() + 600_000);
    expect(await sessions.rotate(hash('first'), { hash: hash('third'), expiresAt: later }, sessionId, later, 10_000)).toBe(false);
    const { rows } = await pool.query<{ access_expires_at: Date }>('SELECT access_expires_at FROM sessions WHERE id = $1', [sessionId]);
    expect(rows[0]?.access_expires_at.getTime()).toBe(accessExpiresAt.getTime());
    expect((await pool.query('SELECT 1 FROM refresh_tokens WHERE token_hash = $1', [hash('third')])).rowCount).toBe(0);
    expect(notices).toEqual([]);
  });
});
