/**
 * The env contract against what people actually type: units, fractions, exponents, yes/no,
 * URLs with unencoded passwords or query strings, and settings that contradict each other.
 * Every refusal names the variable and says what is expected, and no message ever repeats
 * the value (it may be a secret).
 */
import { apiCautions, EnvError, EnvSchema, MAX_JOB_TIMEOUT_MS, MigrateEnvSchema, WorkerEnvSchema, parseEnv } from '../../../services/contract';

const required = { DATABASE_URL: 'postgres://app:pw@db.internal:5432/platform', REDIS_URL: 'rediss://:token@cache.internal:6379', KEY_ENCRYPTION_SECRET: 'k'.repeat(32) };

function issues(source: Record<string, string>, schema: Parameters<typeof parseEnv>[1] = EnvSchema): { variable: string; message: string }[] {
  try {
    parseEnv(source, schema);
  } catch (error) {
    expect(error).toBeInstanceOf(EnvError);
    return (error as EnvError).issues;
  }
  throw new Error(`expected an EnvError for ${JSON.stringify(Object.keys(source))}`);
}

/** The contract's variables whose value is a number: a default that is one, or (the worker's memory budgets, sized when unset) a byte count read as one. */
const numericVariables = Object.entries(EnvSchema.shape)
  .filter(([, schema]) => {
    const { safeParse } = schema as { safeParse(value: string | undefined): { data?: unknown } };
    return typeof safeParse(undefined).data === 'number' || typeof safeParse('16777216').data === 'number';
  })
  .map(([variable]) => variable);

describe('env contract: numbers', () => {
  it('knows which variables are numbers', () => {
    expect(numericVariables).toEqual(expect.arrayContaining(['PORT', 'SHUTDOWN_GRACE_MS', 'WORKER_CONCURRENCY', 'QUOTA_STORED_BYTES', 'QUOTA_JOBS', 'QUOTA_JOB_BYTES', 'EVENT_STREAM_HEARTBEAT_SECONDS']));
    expect(numericVariables).toHaveLength(40);
  });

  it.each(['30s', '1.5', '1e3', '0x10', '1_000', 'abc', ' ', '-1', '0', '+5', 'Infinity', '99999999999999999999'])('refuses %j for every number, naming the variable and asking for a whole number', (value) => {
    for (const variable of numericVariables) {
      expect(issues({ ...required, [variable]: value })).toEqual([{ variable, message: expect.stringMatching(/^must be a whole number( of \w+)?(,| from) 1 .*in digits only$/) }]);
    }
  });

  it('says the unit and the range', () => {
    expect(issues({ ...required, SHUTDOWN_GRACE_MS: '30s' })).toEqual([{ variable: 'SHUTDOWN_GRACE_MS', message: `must be a whole number of milliseconds from 1 to ${MAX_JOB_TIMEOUT_MS}, in digits only` }]);
    expect(issues({ ...required, PORT: '8080.5' })).toEqual([{ variable: 'PORT', message: 'must be a whole number from 1 to 65535, in digits only' }]);
    expect(issues({ ...required, QUOTA_STORED_BYTES: '10GiB' })).toEqual([{ variable: 'QUOTA_STORED_BYTES', message: 'must be a whole number of bytes, 1 or more, in digits only' }]);
  });

  it('takes digits with the whitespace a mounted file leaves around them', () => {
    expect(parseEnv({ ...required, PORT: ' 8081\n', WORKER_CONCURRENCY: '007' })).toMatchObject({ PORT: 8081, WORKER_CONCURRENCY: 7 });
  });

  it('treats an empty variable as unset, and only an empty one', () => {
    expect(parseEnv({ ...required, PORT: '' }).PORT).toBe(8080);
    expect(issues({ ...required, PORT: '  ' })[0]?.variable).toBe('PORT');
  });
});

describe('env contract: flags and choices', () => {
  it.each([
    ['true', true],
    ['TRUE', true],
    ['1', true],
    ['False', false],
    ['0', false],
  ])('reads %j as %j', (value, expected) => {
    expect(parseEnv({ ...required, COOKIE_SECURE: value }).COOKIE_SECURE).toBe(expected);
  });

  it.each(['yes', 'no', 'on', 'off', 'y', '2'])('refuses %j rather than guess', (value) => {
    expect(issues({ ...required, COOKIE_SECURE: value, S3_FORCE_PATH_STYLE: value, ANNOUNCE_PORT_OVER_IPC: value })).toEqual(
      ['ANNOUNCE_PORT_OVER_IPC', 'S3_FORCE_PATH_STYLE', 'COOKIE_SECURE'].map((variable) => ({ variable, message: 'must be true or false (or 1 or 0)' })),
    );
  });

  it('lists the choices', () => {
    expect(issues({ ...required, LOG_LEVEL: 'verbose' })).toEqual([{ variable: 'LOG_LEVEL', message: 'must be one of fatal, error, warn, info, debug, trace, silent' }]);
    expect(issues({ ...required, DATABASE_SSL: 'verify-ca' })).toEqual([{ variable: 'DATABASE_SSL', message: 'must be one of disable, require, verify-full' }]);
  });

  it('refuses names and addresses that are blank, padded or not what they claim', () => {
    expect(issues({ ...required, JWT_ISSUER: ' ' })).toEqual([{ variable: 'JWT_ISSUER', message: 'must not be blank' }]);
    expect(issues({ ...required, SERVICE_NAME: 'api ' })).toEqual([{ variable: 'SERVICE_NAME', message: 'must not begin or end with whitespace' }]);
    expect(issues({ ...required, OBJECT_STORE_DIR: ' ' })[0]?.variable).toBe('OBJECT_STORE_DIR');
    expect(issues({ ...required, S3_BUCKET: 'b-1', S3_REGION: ' ' })[0]?.variable).toBe('S3_REGION');
    for (const from of ['abc', 'no-reply', 'Platform Kit', 'a@b', 'x@y.z\nBcc: victim@example.com', 'one@example.com, two@example.com']) {
      expect(issues({ ...required, MAIL_FROM: from })).toEqual([{ variable: 'MAIL_FROM', message: expect.stringMatching(/^must be one mail address/) }]);
    }
    for (const from of ['no-reply@example.com', 'Platform Kit <no-reply@example.com>', '"Ops, Team" <ops@example.co.uk>']) expect(parseEnv({ ...required, MAIL_FROM: from }).MAIL_FROM).toBe(from);
  });
});

describe('env contract: URLs', () => {
  const secret = 'Sup3rSecretPw';

  it.each([
    ['no host', 'postgres://', /^must name a host/],
    ['no host but a database', 'postgres:///platform', /^must name a host/],
    ['another scheme', `mysql://app:${secret}@db/platform`, /^must start with postgres:\/\/ or postgresql:\/\/, such as/],
    ['an unencoded # in the password', `postgres://app:${secret}#x@db/platform`, /percent-encode @ : \/ \? # %/],
    ['an unencoded / in the password', `postgres://app:${secret}/x@db/platform`, /percent-encode/],
    ['a % starting no escape', `postgres://app:${secret}%zz@db/platform`, /write % as %25/],
    ['sslmode, which would override DATABASE_SSL', `postgres://app:${secret}@db/platform?sslmode=disable`, /^must not carry query parameters/],
    ['a statement_timeout, which would lift the bounds', `postgres://app:${secret}@db/platform?statement_timeout=0`, /^must not carry query parameters/],
    ['port 0', `postgres://app:${secret}@db:0/platform`, /port 0/],
  ])('refuses a DATABASE_URL with %s, without printing it', (_, value, message) => {
    const found = issues({ ...required, DATABASE_URL: value });
    expect(found).toEqual([{ variable: 'DATABASE_URL', message: expect.stringMatching(message) }]);
    expect(JSON.stringify(found)).not.toContain(secret);
  });

  it.each([
    ['no host', 'redis://', /^must name a host/],
    ['only a password', `redis://:${secret}@`, /percent-encode/],
    ['another scheme', `http://:${secret}@cache:6379`, /^must start with redis:\/\/ or rediss:\/\//],
    ['a % starting no escape (ioredis would throw URIError at start)', `redis://:${secret}%zz@cache:6379`, /write % as %25/],
    ['a query, which ioredis would let override the connection settings', `redis://:${secret}@cache:6379?commandTimeout=0`, /^must not carry query parameters/],
    ['a database that is not a number', `redis://:${secret}@cache:6379/abc`, /database number/],
  ])('refuses a REDIS_URL with %s, without printing it', (_, value, message) => {
    const found = issues({ ...required, REDIS_URL: value });
    expect(found).toEqual([{ variable: 'REDIS_URL', message: expect.stringMatching(message) }]);
    expect(JSON.stringify(found)).not.toContain(secret);
  });

  it('takes passwords holding @ and : and percent-escapes, a database number, and postgresql://', () => {
    expect(parseEnv({ ...required, DATABASE_URL: 'postgresql://app:p@ss:w%23rd@db:5432/platform', REDIS_URL: 'redis://:p%2Fss@cache:6379/2' })).toMatchObject({
      DATABASE_URL: 'postgresql://app:p@ss:w%23rd@db:5432/platform',
      REDIS_URL: 'redis://:p%2Fss@cache:6379/2',
    });
  });

  it('refuses an SMTP_URL without a host or of another scheme', () => {
    expect(issues({ ...required, SMTP_URL: 'smtp://' })).toEqual([{ variable: 'SMTP_URL', message: expect.stringMatching(/^must name a host/) }]);
    expect(issues({ ...required, SMTP_URL: 'http://mail' })[0]?.message).toMatch(/^must start with smtp:\/\/ or smtps:\/\//);
  });

  it('refuses an S3_ENDPOINT that is not http(s) or carries credentials (it is logged)', () => {
    const withBucket = { ...required, S3_BUCKET: 'uploads-1' };
    expect(issues({ ...withBucket, S3_ENDPOINT: 'minio:9000' })[0]?.message).toMatch(/^must start with http:\/\/ or https:\/\//);
    expect(issues({ ...withBucket, S3_ENDPOINT: 'ftp://minio' })[0]?.message).toMatch(/^must start with http:\/\/ or https:\/\//);
    expect(issues({ ...withBucket, S3_ENDPOINT: `https://key:${secret}@minio` })).toEqual([{ variable: 'S3_ENDPOINT', message: expect.stringMatching(/^must not carry a user name or password: the AWS SDK/) }]);
  });

  it('refuses a PUBLIC_URL that no mail link can be built on', () => {
    for (const value of ['javascript:alert(1)', 'ftp://example.com', 'mailto:a@example.com']) expect(issues({ ...required, PUBLIC_URL: value })[0]).toEqual({ variable: 'PUBLIC_URL', message: expect.stringMatching(/^must start with http:\/\/ or https:\/\//) });
    expect(issues({ ...required, PUBLIC_URL: 'https://example.com?from=mail' })[0]?.message).toMatch(/^must not carry query parameters/);
    expect(issues({ ...required, PUBLIC_URL: 'https://example.com/#/' })[0]?.message).toMatch(/^must not contain #/);
    expect(issues({ ...required, PUBLIC_URL: 'https://user:pw@example.com' })[0]?.message).toMatch(/^must not carry a user name or password/);
    expect(parseEnv({ ...required, PUBLIC_URL: 'https://example.com/platform/' }).PUBLIC_URL).toBe('https://example.com/platform/');
  });

  it('holds the migrations to the same DATABASE_URL rules', () => {
    expect(issues({ DATABASE_URL: 'postgres://admin:pw@db/platform?sslmode=disable' }, MigrateEnvSchema)[0]?.variable).toBe('DATABASE_URL');
  });
});

describe('env contract: settings that contradict each other', () => {
  it('refuses an access token that outlives its refresh token', () => {
    expect(issues({ ...required, ACCESS_TOKEN_TTL_SECONDS: '3600', REFRESH_TOKEN_TTL_SECONDS: '600' })).toEqual([
      { variable: 'ACCESS_TOKEN_TTL_SECONDS', message: 'must not exceed REFRESH_TOKEN_TTL_SECONDS (600): an access token would outlive the session that issued it' },
    ]);
    expect(parseEnv({ ...required, ACCESS_TOKEN_TTL_SECONDS: '600', REFRESH_TOKEN_TTL_SECONDS: '600' }).ACCESS_TOKEN_TTL_SECONDS).toBe(600);
  });

  it('refuses a submit-bytes budget smaller than one body at the JSON limit', () => {
    expect(issues({ ...required, SUBMIT_BYTES_PER_SECOND: '65536', JSON_BODY_LIMIT_BYTES: '65537' })).toEqual([
      { variable: 'SUBMIT_BYTES_PER_SECOND', message: "must be at least JSON_BODY_LIMIT_BYTES (65537): a submit body at the JSON limit would never fit a user's second" },
    ]);
    expect(parseEnv({ ...required, SUBMIT_BYTES_PER_SECOND: '65536', JSON_BODY_LIMIT_BYTES: '65536' }).SUBMIT_BYTES_PER_SECOND).toBe(65_536);
  });

  it('refuses a Secure cookie for a console served over plain HTTP, but not on localhost', () => {
    expect(issues({ ...required, PUBLIC_URL: 'http://platform.example.com' })).toEqual([{ variable: 'COOKIE_SECURE', message: expect.stringMatching(/^is true \(its default\) while PUBLIC_URL is a plain-HTTP address/) }]);
    expect(parseEnv({ ...required, PUBLIC_URL: 'http://platform.example.com', COOKIE_SECURE: 'false' }).COOKIE_SECURE).toBe(false);
    for (const local of ['http://localhost:8080', 'http://127.0.0.1:3000', 'http://[::1]:8080', 'http://console.localhost']) expect(parseEnv({ ...required, PUBLIC_URL: local }).COOKIE_SECURE).toBe(true);
  });

  it.each([
    ['S3_RESULTS_BUCKET', 'results-1'],
    ['S3_ENDPOINT', 'http://minio:9000'],
    ['S3_REGION', 'eu-west-1'],
    ['S3_PREFIX', 'files/'],
    ['S3_FORCE_PATH_STYLE', 'true'],
  ])('refuses %s without S3_BUCKET, which it would be ignored for', (variable, value) => {
    expect(issues({ ...required, [variable]: value })).toEqual([{ variable, message: expect.stringMatching(/^is set but S3_BUCKET is not/) }]);
    expect(issues({ ...required, [variable]: value }, WorkerEnvSchema)[0]?.variable).toBe(variable);
    expect(() => parseEnv({ ...required, S3_BUCKET: 'uploads-1', [variable]: value })).not.toThrow();
  });

  it('applies a rule only where the schema has its variables: the worker has no cookie', () => {
    expect(parseEnv({ ...required, PUBLIC_URL: 'http://platform.example.com' }, WorkerEnvSchema)).not.toHaveProperty('COOKIE_SECURE');
  });
});

describe('env contract: what the API points out as it starts', () => {
  it('says a cookie without Secure is for a local run, and a production console whose mail links point at localhost', () => {
    expect(apiCautions(parseEnv({ ...required, COOKIE_SECURE: 'false' }))).toEqual(['COOKIE_SECURE=false: the refresh cookie goes over plain HTTP; for a local run only']);
    expect(apiCautions(parseEnv({ ...required, NODE_ENV: 'production' }))).toEqual([
      "PUBLIC_URL is http://localhost:8080 (its default): links in mails (password resets) point at the reader's own machine; set it to the console's address",
    ]);
    expect(apiCautions(parseEnv({ ...required, NODE_ENV: 'production', PUBLIC_URL: 'https://platform.example.com' }))).toEqual([]);
    expect(apiCautions(parseEnv(required))).toEqual([]);
  });
});
