import { JOB_STATUSES, JOB_TYPES } from '../../../services/contract';
import { platform } from './platform-cli';

/**
 * Nothing listens on port 1, so a CLI that connected before reading its flags would wait for
 * Redis and log its connection error (a JSON line with a stack) beside the usage message.
 */
const UNREACHABLE = {
  DATABASE_URL: 'postgres://platform:platform@127.0.0.1:1/platform',
  REDIS_URL: 'redis://127.0.0.1:1',
  KEY_ENCRYPTION_SECRET: 'k'.repeat(32),
};

describe('platform CLI flags', () => {
  it.each([
    [['jobs', 'list', '--limit', '0'], '--limit must be a whole number from 1 to 1000, got "0"'],
    [['jobs', 'list', '--owner', 'nobody'], '--owner must be a UUID, got "nobody"'],
    [['jobs', 'retry', 'not-a-uuid'], 'job id must be a UUID, got "not-a-uuid"'],
    [['dlq', 'list', '--limit', '-1'], '--limit must be a whole number from 1 to 1000, got "-1"'],
    [['dlq', 'replay', '--all', '--limit', '0'], '--limit must be a whole number from 1 to 1000, got "0"'],
    [['doctor', '--worker-timeout', 'abc'], '--worker-timeout must be a positive number of seconds, got "abc"'],
    [['doctor', '--stack', 'prod', '--kube-api', 'http://127.0.0.1:1', '--max-relay-lag', '0'], '--max-relay-lag must be a positive number of seconds, got "0"'],
    [['db', 'cancel', 'abc'], 'pid must be a whole number from 1 to 2147483647, got "abc"'],
    [['purge', '--retention-days', '-1'], '--retention-days must be a whole number of days from 1 to 3650, in digits only, got "-1"'],
    // An empty variable (`--retention-days "$DAYS"`) read as 0 days and purged every finished job.
    [['purge', '--retention-days', ''], '--retention-days must be a whole number of days from 1 to 3650, in digits only, got ""'],
    // These two failed only in PostgreSQL, after connecting, with exit status 1.
    [['db', 'cancel', '2147483648'], 'pid must be a whole number from 1 to 2147483647, got "2147483648"'],
    [['jobs', 'list', '--cursor', 'garbage'], '--cursor must be a cursor a previous page printed (after "next page:")'],
    [['users', 'set-role', 'ada@example.com', 'root'], 'role must be user or admin, got "root"'],
    // A misspelt type matched no job: an empty page and exit 0, as if there were none.
    [['jobs', 'list', '--type', 'file.checksun'], `--type must be one of ${Object.keys(JOB_TYPES).join(', ')}, got "file.checksun"`],
    [['jobs', 'list', '--status', 'done'], `--status must be one of ${JOB_STATUSES.join(', ')}, got "done"`],
    [['users', 'create-admin', 'not-an-email'], 'not an email address: "not-an-email"'],
    [['users', 'disable', 'not-an-email'], 'not an email address: "not-an-email"'],
    [['users', 'enable', 'ada@example.com', '--reason', ''], '--reason must not be empty, got ""'],
    [['users', 'disable', 'ada@example.com', '--reason', 'x'.repeat(501)], `--reason must be at most 500 characters, got "${'x'.repeat(80)}"… (501 characters)`],
  ])('%j is refused with exit 2 and only the message naming the bad value, before connecting', async (args, message) => {
    const run = await platform(args, UNREACHABLE);
    expect({ code: run.code, stdout: run.stdout, stderr: run.stderr }).toEqual({ code: 2, stdout: '', stderr: `platform: ${message}\n` });
  });

  it.each([
    [['keys', 'rotate'], undefined, 'is required'],
    [['keys', 'rotate'], 'short', 'must be at least 32 characters'],
    [['users', 'create-admin', 'ops@example.com'], 'k'.repeat(31), 'must be at least 32 characters'],
    [['users', 'set-role', 'ops@example.com', 'user'], 'k'.repeat(31), 'must be at least 32 characters'],
    [['users', 'disable', 'ops@example.com'], undefined, 'is required'],
  ])('%j with a sealing secret of %j is refused before connecting: the api\'s secret is 32 characters or more', async (args, secret, problem) => {
    const run = await platform(args, { ...UNREACHABLE, KEY_ENCRYPTION_SECRET: secret });
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 2, stderr: `platform: environment variable KEY_ENCRYPTION_SECRET ${problem} (the api's own)\n` });
  });

  it('reports a missing sealing secret as the environment problem it is, naming the variable', async () => {
    const run = await platform(['users', 'show', 'ops@example.com', '--json'], { ...UNREACHABLE, KEY_ENCRYPTION_SECRET: undefined });
    expect(run.code).toBe(2);
    expect(JSON.parse(run.stderr)).toEqual({
      error: { kind: 'environment', message: "environment variable KEY_ENCRYPTION_SECRET is required (the api's own)", exitCode: 2, variables: ['KEY_ENCRYPTION_SECRET'] },
    });
  });
});
