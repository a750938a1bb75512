import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { Server } from 'node:http';
import { Pool } from 'pg';
import { parseEnv, type Env, type EnvVars } from '../../../services/contract';
import { createApp } from '../../../services/api/app';
import { dependenciesFromCore, type AppDependencies, type Lifecycle } from '../../../services/api/dependencies';
import { createExpressServer } from '../../../services/api/http-server';
import { runMigrations } from '../../../services/core/db/migrate';
import { createLogger } from '../../../services/core/logger';
import { createMetrics } from '../../../services/core/metrics';
import { createRuntime, type Runtime } from '../../../services/core/runtime';
import { useSharedServices, type SharedServices } from '../../harness/shared';

export interface ApiFixtureOptions {
  env?: Partial<EnvVars>;
  /** Servers to use instead of slices of the run's shared ones (fault tests bring private servers). */
  servers?: Pick<SharedServices, 'databaseUrl' | 'redisUrl' | 'redisPrefix'>;
  /** A build of the web console for the app to serve at `/`. */
  consoleDir?: string;
}

export interface ApiFixture {
  baseUrl: string;
  env: Env;
  core: Runtime;
  /** A pool of the fixture's own for assertions on what was (not) stored. */
  db: Pool;
  deps: AppDependencies;
  lifecycle: Lifecycle;
  /** Every log line the app wrote, parsed. */
  logLines: Record<string, unknown>[];
  close(): Promise<void>;
}

/** Collects pino's JSON lines so tests can assert on what was logged. */
function captureLogs(lines: Record<string, unknown>[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
}

/**
 * The real API over real PostgreSQL and Redis: a migrated database, the platform core,
 * the app on an ephemeral port. Rate limits are high unless a test asks otherwise.
 */
export async function startApi(options: ApiFixtureOptions = {}): Promise<ApiFixture> {
  const servers = options.servers ?? (await useSharedServices());
  await runMigrations(servers.databaseUrl);
  const objectDir = await mkdtemp(path.join(os.tmpdir(), 'pk-api-objects-'));
  const env = parseEnv({
    NODE_ENV: 'test',
    DATABASE_URL: servers.databaseUrl,
    REDIS_URL: servers.redisUrl,
    QUEUE_PREFIX: servers.redisPrefix,
    OBJECT_STORE_DIR: objectDir,
    KEY_ENCRYPTION_SECRET: randomBytes(32).toString('base64url'),
    AUTH_RATE_LIMIT_PER_MINUTE: '10000',
    REFRESH_RATE_LIMIT_PER_MINUTE: '10000',
    DATABASE_POOL_MAX: '5',
    RELAY_SWEEP_MS: '1000',
    ...options.env,
  });
  const logLines: Record<string, unknown>[] = [];
  const log = createLogger({ service: 'api', level: 'info', destination: captureLogs(logLines) });
  const metrics = createMetrics('api');
  const core = await createRuntime(env, { service: 'api', log, metrics });
  // The rate limiters fall back to per-process counters until Redis is ready; tests count on the shared ones.
  await core.checks.redis();
  const lifecycle: Lifecycle = { draining: false };
  const deps: AppDependencies = await dependenciesFromCore(env, core, { log, metrics, lifecycle, consoleDir: options.consoleDir });
  const app = createApp(deps);
  // Served the way the API process serves it (services/api/server.ts), Express prototypes in place.
  const server: Server = createExpressServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const db = new Pool({ connectionString: servers.databaseUrl, max: 2 });
  // The fault tests stop, restart and hang PostgreSQL: an idle assertion connection cut
  // meanwhile is replaced on its next use, and must not end the test run as an unhandled error.
  db.on('error', () => undefined);
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    env,
    core,
    db,
    deps,
    lifecycle,
    logLines,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await deps.close?.();
      await core.close();
      await db.end();
      await rm(objectDir, { recursive: true, force: true });
    },
  };
}

export interface CallOptions {
  method?: string;
  token?: string;
  json?: unknown;
  body?: RequestInit["body"];
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface CallResult<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** One HTTP call with Node's fetch; the body is parsed when it is JSON (problem+json included). */
export async function call<T = Record<string, unknown>>(api: Pick<ApiFixture, 'baseUrl'>, pathname: string, options: CallOptions = {}): Promise<CallResult<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body = options.body;
  if (options.json !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = JSON.stringify(options.json);
  }
  const response = await fetch(`${api.baseUrl}${pathname}`, { method: options.method ?? (body === undefined ? 'GET' : 'POST'), headers, body, signal: options.signal });
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  const parsed = /json/.test(type) && text ? (JSON.parse(text) as T) : (text as unknown as T);
  return { status: response.status, headers: response.headers, body: parsed, text };
}

let userCounter = 0;

/** Registers a fresh account and logs in; returns its token and id. */
export async function signUp(api: Pick<ApiFixture, 'baseUrl'>, password = 'correct horse battery staple'): Promise<{ token: string; userId: string; email: string }> {
  userCounter += 1;
  const email = `user${userCounter}-${randomBytes(4).toString('hex')}@example.com`;
  const registered = await call(api, '/v1/auth/register', { json: { email, password } });
  if (registered.status !== 202) throw new Error(`register failed: ${registered.status} ${registered.text}`);
  const login = await call<{ accessToken: string }>(api, '/v1/auth/login', { json: { email, password } });
  if (login.status !== 200) throw new Error(`login failed: ${login.status} ${login.text}`);
  const me = await call<{ id: string }>(api, '/v1/auth/me', { token: login.body.accessToken });
  return { token: login.body.accessToken, userId: me.body.id, email };
}

/** Promotes an account to admin directly in the database (there is no HTTP path to it, by design). */
export async function makeAdmin(api: ApiFixture, userId: string, password = 'correct horse battery staple'): Promise<string> {
  const { rows } = await api.db.query<{ email: string }>("UPDATE users SET role = 'admin' WHERE id = $1 RETURNING email", [userId]);
  const login = await call<{ accessToken: string }>(api, '/v1/auth/login', { json: { email: rows[0]?.email, password } });
  return login.body.accessToken;
}

export async function countRows(api: ApiFixture, table: 'jobs' | 'files' | 'users' | 'sessions' | 'refresh_tokens' | 'password_reset_tokens' | 'job_events' | 'signing_keys'): Promise<number> {
  const { rows } = await api.db.query<{ count: number }>(`SELECT count(*)::int AS count FROM ${table}`);
  return rows[0]?.count ?? 0;
}
