import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { useSharedServices } from '../../harness/shared';
import { platform } from './platform-cli';
import { scramAskingServer } from './scram-asking-server';

/** Nothing listens on port 1. */
const UNREACHABLE = {
  DATABASE_URL: 'postgres://platform:platform@127.0.0.1:1/platform',
  REDIS_URL: 'redis://127.0.0.1:1',
};

describe('platform errors and exit', () => {
  it('with --json, says a usage error as one JSON object on standard error, nothing on standard output, exit 2', async () => {
    for (const [args, message] of [
      [['jobs', 'list', '--bogus', '--json'], "unknown option '--bogus'"],
      [['dlq', 'list', '--json', '--limit', '0'], '--limit must be a whole number from 1 to 1000, got "0"'],
      [['jobs', 'show', '--json'], "missing required argument 'jobId'"],
    ] as const) {
      const run = await platform([...args], UNREACHABLE);
      expect({ args, code: run.code, stdout: run.stdout, stderr: JSON.parse(run.stderr) }).toEqual({ args, code: 2, stdout: '', stderr: { error: { kind: 'usage', message, exitCode: 2 } } });
    }
  });

  it('names a missing or bad variable as the CLI, as JSON with --json, exit 2', async () => {
    const plain = await platform(['jobs', 'list'], { REDIS_URL: 'redis://127.0.0.1:1' });
    expect({ code: plain.code, stderr: plain.stderr }).toEqual({ code: 2, stderr: 'platform: environment variable DATABASE_URL is required\n' });
    const json = await platform(['queues', 'stats', '--json'], { DATABASE_URL: 'postgres://u:S3CRET@127.0.0.1:1/db', REDIS_URL: 'http://u:S3CRET@127.0.0.1:1' });
    expect({ code: json.code, stdout: json.stdout, stderr: JSON.parse(json.stderr) }).toEqual({
      code: 2,
      stdout: '',
      stderr: { error: { kind: 'environment', message: 'environment variable REDIS_URL must start with redis:// or rediss://, such as rediss://:token@cache.internal:6379', exitCode: 2, variables: ['REDIS_URL'] } },
    });
  });

  it('doctor says what failed without calling a server that answered unreachable, and what it could not check', async () => {
    const server = await scramAskingServer();
    // The object store needs neither server: its check passes on a directory of its own.
    const objects = mkdtempSync(path.join(os.tmpdir(), 'pk-doctor-objects-'));
    try {
      const { port } = server.address() as AddressInfo;
      const env = { DATABASE_URL: `postgres://platform@127.0.0.1:${port}/platform`, REDIS_URL: UNREACHABLE.REDIS_URL, OBJECT_STORE_DIR: objects };
      const run = await platform(['doctor', '--json'], env, undefined, { timeoutMs: 30_000 });
      expect(run.code).toBe(1);
      const report = JSON.parse(run.stdout) as { healthy: boolean; checks: { check: string; verdict: string; detail: string }[] };
      const detail = Object.fromEntries(report.checks.map((check) => [check.check, `${check.verdict} ${check.detail}`]));
      expect(detail).toEqual({
        postgres: 'fail failed: SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string',
        redis: 'fail failed: connect ECONNREFUSED 127.0.0.1:1',
        'object-store': 'ok writes and reads back a probe object',
        migrations: 'fail not checked: PostgreSQL failed its check (above)',
        clock: 'fail not checked: PostgreSQL failed its check (above)',
        'redis-eviction': 'fail not checked: Redis failed its check (above)',
        workers: 'fail not checked: Redis failed its check (above)',
        queue: 'fail not checked: Redis failed its check (above)',
        relay: 'fail not checked: Redis failed its check (above)',
        flow: 'fail not checked: PostgreSQL failed its check (above)',
        'dead-letters': 'fail not checked: PostgreSQL failed its check (above)',
      });
    } finally {
      server.close();
      rmSync(objects, { recursive: true, force: true });
    }
  });

  describe('with PostgreSQL up and Redis away', () => {
    let databaseUrl: string;
    beforeAll(async () => {
      ({ databaseUrl } = await useSharedServices());
    });

    // queues stats and pause waited for Redis forever; reconcile, with no queued job to ask Redis about, said it had checked 0 and exited 0;
    // dlq replay moved jobs Redis could not take, each reported replayed.
    it.each([[['queues', 'stats']], [['queues', 'pause']], [['reconcile']], [['dlq', 'replay', '--all']]])('%j says Redis is unavailable and why, exit 1', async (args) => {
      const run = await platform([...args, '--json'], { DATABASE_URL: databaseUrl, REDIS_URL: UNREACHABLE.REDIS_URL }, undefined, { timeoutMs: 30_000 });
      expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 1, stdout: '' });
      // The answer says it once: no log lines of the connections' own before it.
      expect(JSON.parse(run.stderr)).toEqual({ error: { kind: 'unavailable', message: 'Redis is unavailable: connect ECONNREFUSED 127.0.0.1:1 (platform doctor checks each part)', exitCode: 1 } });
    });

    // Each of the runtime's two Redis connections logged a warning with a stack, which was all a command that reads PostgreSQL alone printed.
    it.each([[['jobs', 'list']], [['dlq', 'list']], [['db', 'locks']]])('%j, which needs PostgreSQL alone, answers and says nothing of Redis', async (args) => {
      const run = await platform([...args, '--json'], { DATABASE_URL: databaseUrl, REDIS_URL: UNREACHABLE.REDIS_URL }, undefined, { timeoutMs: 30_000 });
      expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
      expect(() => JSON.parse(run.stdout) as unknown).not.toThrow();
    });
  });

  it('exits once it has said what failed, though a library keeps a socket open (pg after a DATABASE_URL without a password)', async () => {
    const server = await scramAskingServer();
    try {
      const { port } = server.address() as AddressInfo;
      const run = await platform(['migrate', '--status', '--json'], { DATABASE_URL: `postgres://platform@127.0.0.1:${port}/platform` }, undefined, { timeoutMs: 30_000 });
      expect({ code: run.code, stdout: run.stdout, stderr: JSON.parse(run.stderr) }).toEqual({
        code: 1,
        stdout: '',
        stderr: { error: { kind: 'failed', message: 'SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string', exitCode: 1 } },
      });
    } finally {
      server.close();
    }
  });
});
