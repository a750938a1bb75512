import { z } from 'zod';
import { inconsistencies } from './env-consistency';
import { flag, label, mailbox, oneOf, url, wholeNumber } from './env-values';
import { MAX_JOB_TIMEOUT_MS } from './job-types';

/** TLS modes of the PostgreSQL connection, weakest first. */
export const DATABASE_SSL_MODES = ['disable', 'require', 'verify-full'] as const;
export type DatabaseSslMode = (typeof DATABASE_SSL_MODES)[number];

/**
 * Every environment variable the api and the worker read. Services parse `process.env`
 * with it at start; the workloads component builds the container env from infra outputs
 * keyed by `keyof Env`, so a variable added here that a stack does not provide fails to
 * compile rather than crash in production. Settings that contradict each other are
 * refused by parseEnv (env-consistency.ts).
 */
const port = wholeNumber({ min: 1, max: 65_535 });
const bucketName = z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name');
/**
 * WORKER_INPUT_BUDGET_BYTES for a worker in 512 MiB (WORKER_BUDGETS_SIZED_FOR_BYTES), or with
 * no memory limit; other limits get the same share (services/worker/memory-budgets.ts). A
 * backlog of 300 one-MiB echo inputs drained in the same time with 8, 16 or 32 MiB or no
 * budget at all (the bound is PostgreSQL and JSON, not slots), while the worker's peak RSS
 * was 298, 302, 497 and 979 MiB.
 */
export const DEFAULT_WORKER_INPUT_BUDGET_BYTES = 16 * 1024 * 1024;
/**
 * WORKER_FILE_MEMORY_BUDGET_BYTES for a worker in 512 MiB, or with no memory limit: sized for
 * the smallest worker pod the stacks run (dev: 512 MiB), leaving room beside it for a full
 * input budget; other limits get the same share. It lets in one text.stats on a 25 MiB file
 * at a time, or two on 8 MiB files; a backlog of the former kept a worker near 300 MiB of
 * resident memory (bench/FINDINGS.md).
 */
export const DEFAULT_WORKER_FILE_MEMORY_BUDGET_BYTES = 64 * 1024 * 1024;
/** The memory limit the default worker budgets were sized and measured for. */
export const WORKER_BUDGETS_SIZED_FOR_BYTES = 512 * 1024 * 1024;
/**
 * JOBS_RUNNING_PER_USER when unset: half the slots of one worker at its default
 * concurrency, so under `npm start` one user's long jobs leave the other half to everyone
 * else. A fleet of several workers raises WORKER_CONCURRENCY's total, not this: set it to
 * what one user may take of the whole.
 */
export const DEFAULT_JOBS_RUNNING_PER_USER = 50;

const seconds = (max?: number) => wholeNumber({ min: 1, max, unit: 'seconds' });
const milliseconds = (max: number) => wholeNumber({ min: 1, max, unit: 'milliseconds' });
const bytes = wholeNumber({ min: 1, unit: 'bytes' });
const count = (max?: number) => wholeNumber({ min: 1, max });

export const EnvSchema = z.object({
  NODE_ENV: oneOf(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Name stamped on every log line and metric (`api`, `worker`, `cli`). */
  SERVICE_NAME: label({ max: 64 }).optional(),

  /** HTTP port of the API. */
  PORT: port.default(8080),
  /** Port of the worker's own /metrics and /healthz listener. */
  WORKER_METRICS_PORT: port.default(9091),
  /**
   * Set by `npm start`'s supervisor, which starts the API with an IPC channel: once its
   * listener is bound, the API says on which port there (services/local/api-port.ts).
   */
  ANNOUNCE_PORT_OVER_IPC: flag.default(false),
  /** Node cluster workers serving the API (1 = no cluster). */
  API_PROCESSES: count(64).default(1),

  /**
   * `postgres://user:password@host:5432/database`. No query parameters: pg lets them win
   * over the services' own settings, so `?sslmode=disable` would turn DATABASE_SSL's TLS
   * off and `?statement_timeout=0` lift the statement bounds.
   */
  DATABASE_URL: url({
    schemes: ['postgres:', 'postgresql:'],
    example: 'postgres://app:password@db.internal:5432/platform',
    credentials: 'allowed',
    queryRefusedBecause: 'they would override the services\' own connection settings (TLS is DATABASE_SSL)',
  }),
  DATABASE_POOL_MAX: count(200).default(10),
  /**
   * TLS to PostgreSQL. `disable` (the local run's embedded server), `require` (encrypted,
   * certificate not checked), `verify-full` (encrypted, the certificate must chain to a
   * trusted root, AWS's RDS roots included, and name the host: what the cloud uses).
   */
  DATABASE_SSL: oneOf(DATABASE_SSL_MODES).default('disable'),

  /**
   * `rediss://` connects over TLS (ElastiCache: `rediss://:<auth token>@<primary endpoint>:6379`).
   * No query parameters: ioredis lets them win over the services' connection settings.
   */
  REDIS_URL: url({
    schemes: ['redis:', 'rediss:'],
    example: 'rediss://:token@cache.internal:6379',
    credentials: 'allowed',
    queryRefusedBecause: 'they would override the services\' own connection settings',
    path: { pattern: /^(\/(\d{1,5})?)?$/, message: 'must name no database or a database number (…:6379/0), nothing else after the port' },
  }),
  /**
   * BullMQ key prefix. Hash-tagged so that every key of a queue lands in one Redis
   * Cluster slot (BullMQ's Lua scripts touch several keys at once).
   */
  QUEUE_PREFIX: z
    .string()
    .regex(/^\{[A-Za-z0-9_.-]{1,64}\}$/, 'must be a hash tag such as {pk}')
    .default('{pk}'),

  /** Filesystem object store root, used when S3_BUCKET is unset. */
  OBJECT_STORE_DIR: label({ max: 4_096 }).default('.data/objects'),
  /** Bucket of uploaded files (and of job outputs too when S3_RESULTS_BUCKET is unset). */
  S3_BUCKET: bucketName.optional(),
  /** Bucket of job outputs, when they live apart from the uploads (the cloud's results bucket). */
  S3_RESULTS_BUCKET: bucketName.optional(),
  S3_PREFIX: z.string().regex(/^[\x21-\x7E]{0,256}$/, 'must be at most 256 printable ASCII characters without spaces').default(''),
  /** Region of the buckets. Unset: the AWS SDK's own resolution (AWS_REGION, which EKS sets for IRSA pods). */
  S3_REGION: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be a region name such as eu-west-1').optional(),
  /** S3-compatible endpoint (MinIO, LocalStack); unset means AWS. Credentials come from the AWS variables, never from here (it is logged). */
  S3_ENDPOINT: url({
    schemes: ['http:', 'https:'],
    example: 'http://minio.internal:9000',
    credentials: 'refused',
    credentialsRefusedBecause: 'the AWS SDK takes them from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and this address is logged',
    queryRefusedBecause: 'the SDK builds each request\'s own',
  }).optional(),
  S3_FORCE_PATH_STYLE: flag.default(false),

  /**
   * Seals the access-token signing keys stored in PostgreSQL (AES-256-GCM under a key
   * derived from it); at least 32 characters. The api and `platform keys rotate` read it,
   * never the worker. Never logged.
   */
  KEY_ENCRYPTION_SECRET: z.string().min(32, 'must be at least 32 characters'),
  /** `iss` of access tokens: one per stack, so a token of one stack is refused by another. */
  JWT_ISSUER: label({ max: 256 }).default('platform-kit'),
  ACCESS_TOKEN_TTL_SECONDS: seconds(86_400).default(900),
  /** Lifetime of a refresh token (each refresh issues a new one); default 30 days. */
  REFRESH_TOKEN_TTL_SECONDS: seconds(31_536_000).default(2_592_000),
  PASSWORD_RESET_TTL_SECONDS: seconds(86_400).default(1_800),
  /** `Secure` on the refresh cookie. Only a local run over plain HTTP sets it false. */
  COOKIE_SECURE: flag.default(true),
  /**
   * Which proxies' X-Forwarded-For to believe: `false` (none: the peer is the client), a hop
   * count (the load balancer's hops, e.g. 1 behind the ALB), or a comma-separated list of
   * the proxies' addresses or CIDRs. Never "every private address": then any in-cluster
   * client could forge its address.
   */
  TRUST_PROXY: z
    .string()
    .default('false')
    .transform((raw, context): false | number | string[] => {
      const value = raw.trim();
      if (value === 'false') return false;
      if (/^\d{1,2}$/.test(value)) return Number(value);
      const entries = value.split(',').map((entry) => entry.trim());
      const address = z.union([z.ipv4(), z.ipv6(), z.cidrv4(), z.cidrv6()]);
      if (entries.length > 0 && entries.every((entry) => address.safeParse(entry).success)) return entries;
      context.addIssue({ code: 'custom', message: 'must be false, a hop count, or a comma-separated list of addresses or CIDRs' });
      return z.NEVER;
    }),
  /** Base URL of the console, for links in mails (`${PUBLIC_URL}/reset#token=…`): so no query, fragment or credentials. */
  PUBLIC_URL: url({
    schemes: ['http:', 'https:'],
    example: 'https://platform.example.com',
    credentials: 'refused',
    credentialsRefusedBecause: 'it is written into every mail',
    queryRefusedBecause: 'links are built by appending a path to it',
  }).default('http://localhost:8080'),

  JSON_BODY_LIMIT_BYTES: bytes.default(1_048_576),
  /**
   * A JSON body of 64 KiB or more must arrive within this long of being let in, or the
   * request is answered 408 and its connection closed: the API holds only so many large
   * bodies at once, and a client trickling one in would keep that room from others.
   */
  LARGE_BODY_TIMEOUT_SECONDS: seconds(3_600).default(30),
  UPLOAD_LIMIT_BYTES: bytes.default(26_214_400),
  /** Per client address (IPv6 by /64): login, registration, refresh and password-reset requests. */
  AUTH_RATE_LIMIT_PER_MINUTE: count().default(20),
  /**
   * Per client address: session refreshes, which every console page load makes. A refresh
   * token is 256 random bits, nothing to guess, so its limit only bounds the work, and it
   * is apart from the credential limit: an office behind one address reloading pages must
   * not use up its colleagues' logins.
   */
  REFRESH_RATE_LIMIT_PER_MINUTE: count().default(300),
  /**
   * Failed logins of one account from one client address (IPv6 by /64) before that address is
   * locked out of it; each further lockout doubles (up to a day). Other addresses are untouched,
   * so knowing an email is not enough to lock its owner out.
   */
  LOGIN_FAILURES_BEFORE_LOCKOUT: count(1_000).default(5),
  /**
   * Failed logins of one account from all addresses together (within 15 minutes) before it is
   * locked, with the same backoff, for every address it has not signed in from in 30 days.
   */
  LOGIN_FAILURES_BEFORE_ACCOUNT_LOCKOUT: count(100_000).default(100),
  LOCKOUT_SECONDS: seconds(86_400).default(60),
  /** Password-reset requests per account per hour. */
  PASSWORD_RESET_PER_HOUR: count(1_000).default(5),
  /** Per user. Generous by default: the platform's throughput target is met within it. */
  SUBMIT_RATE_LIMIT_PER_SECOND: count().default(2_000),
  /**
   * Per user: bytes of submit bodies the API takes per second. The API spends about 60 ms
   * on a MiB of JSON input, and up to about 250 ms on one of small values; the count limit
   * above would let a user send many MiB a second and take the API from everyone else.
   * The default, one body at the JSON limit a second, is far more than jobs of ordinary
   * inputs need at that count; bulk data goes through uploads.
   */
  SUBMIT_BYTES_PER_SECOND: bytes.default(1_048_576),
  UPLOAD_RATE_LIMIT_PER_MINUTE: count().default(120),
  /** New event-stream connections per user per minute. */
  STREAM_RATE_LIMIT_PER_MINUTE: count().default(120),
  /**
   * Per user: bytes of job data (the lists and jobs that carry inputs and results) the API
   * sends per second. One page that includes them is up to 4 MiB, about a tenth of a second
   * of the API's time to build; the default lets a user read one such page a second.
   */
  JOB_DATA_READ_BYTES_PER_SECOND: bytes.default(4 * 1_048_576),
  /** Per-user quotas. */
  QUOTA_STORED_BYTES: bytes.default(10 * 1024 ** 3),
  QUOTA_FILES: count().default(10_000),
  QUOTA_QUEUED_JOBS: count().default(1_000_000),
  /**
   * Jobs a user keeps, queued to finished (finished ones until deleted or purged after
   * JOB_RETENTION_DAYS; a fan-out job's tasks count), and the bytes of their inputs and
   * results as JSON text: what one user can make PostgreSQL hold.
   */
  QUOTA_JOBS: count().default(10_000_000),
  QUOTA_JOB_BYTES: bytes.default(10 * 1024 ** 3),

  /** Finished jobs older than this are purged with their events and result files. */
  JOB_RETENTION_DAYS: wholeNumber({ min: 1, max: 3_650, unit: 'days' }).default(30),
  /** How often the worker runs the retention purge. */
  PURGE_INTERVAL_SECONDS: seconds(604_800).default(3_600),
  /** `smtp://` or `smtps://` URL of the mail relay; unset, mails are dropped as .eml files in the object store (`mail/`). */
  SMTP_URL: url({ schemes: ['smtp:', 'smtps:'], example: 'smtps://user:password@mail.example.com:465', credentials: 'allowed' }).optional(),
  /** The From of every mail: one mailbox, `no-reply@example.com` or `Name <no-reply@example.com>`. */
  MAIL_FROM: mailbox.max(200).default('Platform Kit <no-reply@platform-kit.invalid>'),

  /**
   * Jobs one worker runs at once. A short job holds its slot mostly while its state is
   * written, so one worker drains about WORKER_CONCURRENCY ÷ that time (bench/FINDINGS.md).
   */
  WORKER_CONCURRENCY: count(1_000).default(100),
  /**
   * Jobs of one user running at once across every worker, so one user's long jobs cannot
   * take every slot from the others. A job past it waits, its attempt not charged, and runs
   * as soon as one of that user's jobs ends. Jobs sharing a queue entry (echo) run in well
   * under a millisecond and are not counted.
   */
  JOBS_RUNNING_PER_USER: count(100_000).default(DEFAULT_JOBS_RUNNING_PER_USER),
  /**
   * Bytes of large job inputs (over 64 KiB) one worker holds at once; a job with one waits
   * for room before its input is read. One larger than the whole budget runs alone. Unset:
   * sized from the worker's memory limit (services/worker/memory-budgets.ts).
   */
  WORKER_INPUT_BUDGET_BYTES: bytes.optional(),
  /**
   * Bytes of memory one worker lets file jobs hold at once for what grows with their file
   * (a type's fileMemory: text.stats, csv.summary, file.compress to brotli); such a job waits
   * for room before it starts. One needing more than the whole budget runs alone. Unset:
   * sized from the worker's memory limit (services/worker/memory-budgets.ts).
   */
  WORKER_FILE_MEMORY_BUDGET_BYTES: bytes.optional(),
  /**
   * A name for the place this worker process runs in, which only one worker process holds
   * at a time: in the cluster the pod's uid, under `npm start` its one worker. A worker
   * starting in a slot releases at once the jobs the previous process there left running
   * (killed, out of memory) instead of leaving them to wait out their locks. Unset, they
   * wait: nothing then says the earlier process is gone.
   */
  WORKER_SLOT: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'must be 1-128 letters, digits, dots, underscores, colons or hyphens, starting with a letter or digit')
    .optional(),
  /**
   * How long SIGTERM waits for in-flight work before releasing it. A worker's drain covers
   * the longest job timeout, so the ceiling is the longest timeout a job type may declare.
   */
  SHUTDOWN_GRACE_MS: milliseconds(MAX_JOB_TIMEOUT_MS).default(25_000),
  /** How often the relay sweeps for queued jobs that Redis does not hold. */
  RELAY_SWEEP_MS: milliseconds(3_600_000).default(5_000),

  /**
   * Writes whose cost grows with a fan-out's tasks (a fan-out submit; a cancel, retry or
   * delete of any job) one user runs at once on one API process; one more is answered 429
   * with Retry-After. One on a job of 10,000 tasks holds a PostgreSQL connection for seconds.
   */
  JOB_WRITES_AT_ONCE_PER_USER: count(1_000).default(2),
  /** Event streams (SSE) one API process holds open at most; one more is answered 503 with Retry-After. */
  EVENT_STREAMS_MAX: count(100_000).default(5_000),
  /** Event streams one user holds open on one API process at most; one more is answered 429 with Retry-After. */
  EVENT_STREAMS_PER_USER: count(100_000).default(20),
  /**
   * Event streams one client address (IPv6 by /64) holds open on one API process at most,
   * whatever accounts it signs in with (registration is open); one more is answered 429 with
   * Retry-After. An office behind one NAT address shares it.
   */
  EVENT_STREAMS_PER_ADDRESS: count(100_000).default(200),
  /** An event stream is ended after this long, with a `retry:` hint; its client resumes from its last event id. */
  EVENT_STREAM_MAX_SECONDS: seconds(86_400).default(900),
  /** Comment lines keep an idle stream from being timed out by proxies this often. */
  EVENT_STREAM_HEARTBEAT_SECONDS: seconds(3_600).default(15),
});

export type Env = z.infer<typeof EnvSchema>;

/**
 * What the worker and the CLI read: everything but the API's own settings. The worker
 * never receives the key-encryption secret, so a compromised worker cannot mint tokens.
 */
export const WorkerEnvSchema = EnvSchema.omit({
  PORT: true,
  ANNOUNCE_PORT_OVER_IPC: true,
  API_PROCESSES: true,
  KEY_ENCRYPTION_SECRET: true,
  JWT_ISSUER: true,
  ACCESS_TOKEN_TTL_SECONDS: true,
  REFRESH_TOKEN_TTL_SECONDS: true,
  PASSWORD_RESET_TTL_SECONDS: true,
  COOKIE_SECURE: true,
  TRUST_PROXY: true,
  PUBLIC_URL: true,
  JSON_BODY_LIMIT_BYTES: true,
  LARGE_BODY_TIMEOUT_SECONDS: true,
  UPLOAD_LIMIT_BYTES: true,
  AUTH_RATE_LIMIT_PER_MINUTE: true,
  REFRESH_RATE_LIMIT_PER_MINUTE: true,
  LOGIN_FAILURES_BEFORE_LOCKOUT: true,
  LOGIN_FAILURES_BEFORE_ACCOUNT_LOCKOUT: true,
  LOCKOUT_SECONDS: true,
  PASSWORD_RESET_PER_HOUR: true,
  SUBMIT_RATE_LIMIT_PER_SECOND: true,
  SUBMIT_BYTES_PER_SECOND: true,
  UPLOAD_RATE_LIMIT_PER_MINUTE: true,
  STREAM_RATE_LIMIT_PER_MINUTE: true,
  JOB_DATA_READ_BYTES_PER_SECOND: true,
  QUOTA_QUEUED_JOBS: true,
  QUOTA_JOBS: true,
  QUOTA_JOB_BYTES: true,
  JOB_WRITES_AT_ONCE_PER_USER: true,
  EVENT_STREAMS_MAX: true,
  EVENT_STREAMS_PER_USER: true,
  EVENT_STREAMS_PER_ADDRESS: true,
  EVENT_STREAM_MAX_SECONDS: true,
  EVENT_STREAM_HEARTBEAT_SECONDS: true,
});
export type WorkerEnv = z.infer<typeof WorkerEnvSchema>;

/**
 * What `platform migrate` reads: the database as its owner (the RDS master user in the
 * cloud), and the login roles it creates or updates with least privilege. A role is set
 * by its user and password together; unset, none is managed (the local run connects as
 * the owner).
 */
const roleName = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lowercase PostgreSQL role name');
const rolePassword = z.string().regex(/^[\x21-\x7E]{16,128}$/, 'must be 16-128 printable ASCII characters without spaces');
export const MigrateEnvSchema = EnvSchema.pick({ LOG_LEVEL: true, DATABASE_URL: true, DATABASE_SSL: true })
  .extend({
    /** Role the api and worker connect as: read and write the platform's tables, nothing else. */
    DATABASE_APP_USER: roleName.optional(),
    DATABASE_APP_PASSWORD: rolePassword.optional(),
    /** Role the queue autoscaler connects as: reads `jobs.status` only. */
    DATABASE_SCALER_USER: roleName.optional(),
    DATABASE_SCALER_PASSWORD: rolePassword.optional(),
  })
  .refine((env) => (env.DATABASE_APP_USER === undefined) === (env.DATABASE_APP_PASSWORD === undefined), {
    path: ['DATABASE_APP_PASSWORD'],
    message: 'must be set together with DATABASE_APP_USER',
  })
  .refine((env) => (env.DATABASE_SCALER_USER === undefined) === (env.DATABASE_SCALER_PASSWORD === undefined), {
    path: ['DATABASE_SCALER_PASSWORD'],
    message: 'must be set together with DATABASE_SCALER_USER',
  });
export type MigrateEnv = z.infer<typeof MigrateEnvSchema>;

/**
 * A schema's variables as strings, the form a container spec or a shell provides. A key
 * the schema requires (no default, not optional) is required here too, so a deployment
 * that builds its env as this type fails to compile when it misses one.
 */
export type EnvVarsOf<S extends z.ZodType> = { [K in keyof z.input<S>]: string };
export type EnvVars = EnvVarsOf<typeof EnvSchema>;
export type WorkerEnvVars = EnvVarsOf<typeof WorkerEnvSchema>;
export type MigrateEnvVars = EnvVarsOf<typeof MigrateEnvSchema>;

/** Variables that carry credentials: a deployment keeps them in a secret store, never in plain config. */
export const SECRET_ENV_KEYS = ['DATABASE_URL', 'REDIS_URL', 'KEY_ENCRYPTION_SECRET', 'SMTP_URL', 'DATABASE_APP_PASSWORD', 'DATABASE_SCALER_PASSWORD'] as const;
export type SecretEnvKey = (typeof SECRET_ENV_KEYS)[number];

export class EnvError extends Error {
  constructor(readonly issues: { variable: string; message: string }[]) {
    super(`Invalid environment: ${issues.map((issue) => `${issue.variable} ${issue.message}`).join('; ')}`);
    this.name = this.constructor.name;
  }
}

/**
 * Parses an environment; throws EnvError naming each bad variable (never its value: it may
 * be a secret), then each contradiction between valid ones (env-consistency.ts). An empty
 * variable counts as unset, as `VAR=` in a shell or a blank ConfigMap entry means.
 */
export function parseEnv(source: Record<string, string | undefined>): Env;
export function parseEnv<S extends z.ZodType>(source: Record<string, string | undefined>, schema: S): z.output<S>;
export function parseEnv(source: Record<string, string | undefined>, schema: z.ZodType = EnvSchema): unknown {
  const blanksRemoved = Object.fromEntries(Object.entries(source).filter(([, value]) => value !== undefined && value !== ''));
  const result = schema.safeParse(blanksRemoved);
  if (!result.success) {
    const firstIssuePerVariable = new Map<string, string>();
    for (const issue of result.error.issues) {
      const variable = String(issue.path[0] ?? '(env)');
      if (firstIssuePerVariable.has(variable)) continue;
      firstIssuePerVariable.set(variable, issue.code === 'invalid_type' && !(variable in blanksRemoved) ? 'is required' : issue.message);
    }
    throw new EnvError([...firstIssuePerVariable].map(([variable, message]) => ({ variable, message })));
  }
  const contradictions = inconsistencies(schema, result.data as Record<string, unknown>);
  if (contradictions.length > 0) throw new EnvError(contradictions);
  return result.data;
}
