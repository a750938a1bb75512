/**
 * The env contract's answers to what the cloud needs: no region guessed for the buckets,
 * TLS modes, the results bucket, a drain long enough for the longest job, the migrations'
 * role pairs, and which variables are credentials.
 */
import { EnvError, EnvSchema, LONGEST_JOB_TIMEOUT_MS, MigrateEnvSchema, SECRET_ENV_KEYS, WorkerEnvSchema, parseEnv } from '../../../services/contract';

const required = { DATABASE_URL: 'postgres://app:pw@db.internal:5432/platform', REDIS_URL: 'rediss://:token@cache.internal:6379', KEY_ENCRYPTION_SECRET: 'k'.repeat(32) };

function issues(fn: () => unknown): { variable: string; message: string }[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(EnvError);
    return (error as EnvError).issues;
  }
  throw new Error('expected an EnvError');
}

describe('env contract', () => {
  it('guesses no region for the buckets: unset leaves it to the AWS SDK (AWS_REGION), never us-east-1', () => {
    expect(parseEnv({ ...required, S3_BUCKET: 'uploads-1' }).S3_REGION).toBeUndefined();
    expect(parseEnv({ ...required, S3_BUCKET: 'uploads-1', S3_REGION: 'eu-west-1' }).S3_REGION).toBe('eu-west-1');
  });

  it('knows the results bucket apart from the uploads bucket', () => {
    expect(parseEnv({ ...required, S3_BUCKET: 'uploads-1', S3_RESULTS_BUCKET: 'results-1' })).toMatchObject({ S3_BUCKET: 'uploads-1', S3_RESULTS_BUCKET: 'results-1' });
    expect(issues(() => parseEnv({ ...required, S3_RESULTS_BUCKET: 'Not_A_Bucket' }))).toEqual([{ variable: 'S3_RESULTS_BUCKET', message: 'must be a valid S3 bucket name' }]);
  });

  it('takes the three TLS modes of the database connection and nothing else', () => {
    for (const mode of ['disable', 'require', 'verify-full']) expect(parseEnv({ ...required, DATABASE_SSL: mode }).DATABASE_SSL).toBe(mode);
    expect(issues(() => parseEnv({ ...required, DATABASE_SSL: 'verify-ca' }))[0]?.variable).toBe('DATABASE_SSL');
  });

  it('lets a worker drain for the longest job timeout', () => {
    expect(parseEnv({ ...required, SHUTDOWN_GRACE_MS: String(LONGEST_JOB_TIMEOUT_MS) }, WorkerEnvSchema).SHUTDOWN_GRACE_MS).toBe(LONGEST_JOB_TIMEOUT_MS);
  });

  it('has the migrations set a role by its user and password together', () => {
    const base = { DATABASE_URL: required.DATABASE_URL };
    expect(parseEnv(base, MigrateEnvSchema)).toMatchObject({ DATABASE_URL: base.DATABASE_URL, DATABASE_SSL: 'disable' });
    expect(issues(() => parseEnv({ ...base, DATABASE_APP_USER: 'platform_app' }, MigrateEnvSchema))).toEqual([{ variable: 'DATABASE_APP_PASSWORD', message: 'must be set together with DATABASE_APP_USER' }]);
    expect(issues(() => parseEnv({ ...base, DATABASE_SCALER_USER: 'platform_scaler', DATABASE_SCALER_PASSWORD: 'short' }, MigrateEnvSchema))[0]).toEqual({ variable: 'DATABASE_SCALER_PASSWORD', message: 'must be 16-128 printable ASCII characters without spaces' });
    expect(issues(() => parseEnv({ ...base, DATABASE_APP_USER: 'App; DROP', DATABASE_APP_PASSWORD: 'p'.repeat(20) }, MigrateEnvSchema))[0]?.variable).toBe('DATABASE_APP_USER');
  });

  it('names as credentials only variables some schema reads', () => {
    const known = new Set([...Object.keys(EnvSchema.shape), ...Object.keys(MigrateEnvSchema.shape)]);
    for (const key of SECRET_ENV_KEYS) expect(known.has(key)).toBe(true);
    expect(SECRET_ENV_KEYS).toEqual(expect.arrayContaining(['DATABASE_URL', 'REDIS_URL', 'KEY_ENCRYPTION_SECRET', 'SMTP_URL']));
  });
});
