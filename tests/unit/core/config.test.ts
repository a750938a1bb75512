/**
 * What a service says about its environment as it boots (services/core/config.ts): a bad
 * variable stops it with status 2 naming the variable, and a credential it never reads is
 * pointed out, since the deployment that handed it over defeats the reason it is kept away.
 */
import { loadEnv } from '../../../services/core/config';

const required = { DATABASE_URL: 'postgres://app:pw@db.internal:5432/platform', REDIS_URL: 'rediss://:token@cache.internal:6379' };
const sealingSecret = 'k'.repeat(32);

describe('loadEnv', () => {
  let written: string[];
  beforeEach(() => {
    written = [];
    jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
  });
  afterEach(() => jest.restoreAllMocks());

  it('points out the key-encryption secret handed to a worker, without printing it', () => {
    expect(loadEnv('worker', { ...required, KEY_ENCRYPTION_SECRET: sealingSecret })).not.toHaveProperty('KEY_ENCRYPTION_SECRET');
    expect(written).toEqual([expect.stringMatching(/^worker: KEY_ENCRYPTION_SECRET is set, but the worker never reads it: keep it out of this environment/)]);
    expect(written.join('')).not.toContain(sealingSecret);
  });

  it('points out the migration roles\' passwords handed to the api', () => {
    loadEnv('api', { ...required, KEY_ENCRYPTION_SECRET: sealingSecret, DATABASE_APP_PASSWORD: 'p'.repeat(20) });
    expect(written).toEqual([expect.stringMatching(/^api: DATABASE_APP_PASSWORD is set, but the api never reads it/)]);
  });

  it('says nothing of secrets to the CLI, which migrates and rotates keys, nor to a service given only its own', () => {
    loadEnv('cli', { ...required, KEY_ENCRYPTION_SECRET: sealingSecret, DATABASE_APP_PASSWORD: 'p'.repeat(20) });
    loadEnv('api', { ...required, KEY_ENCRYPTION_SECRET: sealingSecret });
    loadEnv('worker', required);
    expect(written).toEqual([]);
  });

  it('exits with status 2 naming each bad variable, never its value', () => {
    const exit = jest.spyOn(process, 'exit').mockImplementation((code) => {
      throw new Error(`exit ${String(code)}`);
    });
    expect(() => loadEnv('worker', { ...required, REDIS_URL: 'redis://:hunter2%@cache:6379', WORKER_CONCURRENCY: '10k' })).toThrow('exit 2');
    expect(exit).toHaveBeenCalledWith(2);
    expect(written).toEqual([
      'worker: environment variable REDIS_URL has a % in its user name or password that starts no %-escape: write % as %25\n',
      'worker: environment variable WORKER_CONCURRENCY must be a whole number from 1 to 1000, in digits only\n',
    ]);
  });
});
