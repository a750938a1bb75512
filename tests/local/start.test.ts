import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import net from 'node:net';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { Client } from 'pg';
import { isProcessAlive, waitForPidsGone } from '../../services/local/child';
import { PATHS } from '../../services/contract';
import { findPrometheus } from '../../services/local/prometheus';
import { findFreePort } from '../harness/free-port';
import { useSharedServices } from '../harness/shared';
import { SupervisorProcess } from './supervisor-process';

/** How a test reaches the local run's PostgreSQL and Redis: the ports and password it keeps under .data/. */
function localConnections(workDir: string): { databaseUrl: string; redisUrl: string } {
  const ports = JSON.parse(readFileSync(path.join(workDir, '.data', 'ports.json'), 'utf8')) as Record<string, number>;
  const password = readFileSync(path.join(workDir, '.data', 'postgres-password'), 'utf8').trim();
  const redisPassword = readFileSync(path.join(workDir, '.data', 'redis-password'), 'utf8').trim();
  return {
    databaseUrl: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${ports.postgres}/platform`,
    redisUrl: `redis://default:${encodeURIComponent(redisPassword)}@127.0.0.1:${ports.redis}`,
  };
}

async function sql<T extends Record<string, unknown>>(url: string, text: string): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

async function withRedis<T>(url: string, use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

/** Takes `port` on every interface, so the local run must pick another; already taken by someone else (another checkout's run) does as well. */
async function holdPort(port: number): Promise<net.Server> {
  const holder = net.createServer();
  await new Promise<void>((resolve) => {
    holder.once('error', () => resolve());
    holder.listen({ port, host: '0.0.0.0' }, () => resolve());
  });
  return holder;
}

/** The worker's usual metrics port. */
const holdWorkerMetricsPort = (): Promise<net.Server> => holdPort(9091);

/** The run's API processes (the supervisor's descendants running api/main). */
function apiPids(supervisor: SupervisorProcess): number[] {
  return supervisor.descendants().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(path.join('api', 'main.'));
    } catch {
      return false; // gone meanwhile
    }
  });
}

async function until(condition: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const isInfraReady = (record: { msg: string }): boolean => record.msg.startsWith('infrastructure ready');

/** A directory laid out like a checkout: PostgreSQL runs as its own system user and must be able to enter it. */
async function checkoutDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pk-local-start-'));
  await chmod(dir, 0o755);
  return dir;
}

describe('npm start (services/local/start.ts)', () => {
  let workDir: string;
  const running = new Set<SupervisorProcess>();

  function start(args: string[], env: NodeJS.ProcessEnv = {}): SupervisorProcess {
    const supervisor = new SupervisorProcess(workDir, args, env);
    running.add(supervisor);
    return supervisor;
  }

  /** SIGTERM, then the supervisor must exit 0 with every process it started gone. */
  async function stopCleanly(supervisor: SupervisorProcess): Promise<void> {
    const tree = supervisor.descendants();
    expect(tree.length).toBeGreaterThan(0);
    supervisor.signal('SIGTERM');
    expect(await supervisor.exited).toEqual({ code: 0, signal: null });
    expect(await waitForPidsGone(tree, 5_000)).toBe(true);
    running.delete(supervisor);
  }

  /**
   * A checkout after its first `npm start -- --infra-only`, stopped cleanly: made once, so
   * that the tests about anything but a first start (startedBefore) spare themselves its
   * initdb, database, migrations and secrets. The tests about a first start begin empty.
   */
  let firstStartDone: string;

  beforeAll(async () => {
    firstStartDone = await checkoutDir();
    const first = new SupervisorProcess(firstStartDone, ['--infra-only'], { PORT: String(await findFreePort()) });
    try {
      await first.waitFor(isInfraReady);
      first.signal('SIGTERM');
      const exit = await first.exited;
      if (exit.code !== 0) throw new Error(`the first start did not stop cleanly (${JSON.stringify(exit)}):\n${first.transcript()}`);
    } finally {
      if (first.running) first.killTree();
    }
  }, 180_000);

  afterAll(async () => {
    await rm(firstStartDone, { recursive: true, force: true });
  });

  /**
   * Makes the work dir a checkout that has run `npm start` before: a copy of that first
   * start's .data/ with owners and modes kept (.data 0700, its secrets 0600, the
   * PostgreSQL data owned by the server's user when we are root), which start.ts checks.
   */
  async function startedBefore(): Promise<void> {
    await promisify(execFile)('cp', ['-a', path.join(firstStartDone, '.data'), path.join(workDir, '.data')]);
  }

  beforeEach(async () => {
    workDir = await checkoutDir();
  });

  afterEach(async () => {
    for (const supervisor of running) supervisor.killTree();
    running.clear();
    await rm(workDir, { recursive: true, force: true });
  });

  it('refuses a second start in the same checkout while one runs, before it starts anything over the first one\'s .data/', async () => {
    await startedBefore();
    const first = start(['--infra-only'], { PORT: String(await findFreePort()) });
    await first.waitFor(isInfraReady);
    const { databaseUrl } = localConnections(workDir);
    const kept = () => ['ports.json', 'cli.env'].map((name) => readFileSync(path.join(workDir, '.data', name), 'utf8'));
    const before = kept();
    // With a database of its own, nothing but the checkout's own state would stop it: a second
    // private Redis over the same .data/redis, ports.json and cli.env pointing at it.
    const second = start(['--infra-only'], { PORT: String(await findFreePort()), DATABASE_URL: databaseUrl });
    const outcome = await Promise.race([second.exited.then(() => 'refused'), second.waitFor(isInfraReady).then(() => 'started beside the first', () => 'refused')]);
    expect(outcome).toBe('refused');
    expect(await second.exited).toEqual({ code: 1, signal: null });
    running.delete(second);
    expect(second.records.find((record) => record.level === 'fatal')?.msg).toMatch(new RegExp(`another \`npm start\` runs in this checkout \\(pid ${first.pid}\\)`));
    expect(second.records.filter((record) => record.service !== 'local')).toEqual([]);
    expect(kept()).toEqual(before);
    await stopCleanly(first);

    // A run killed outright leaves its claim behind; the next start sees that its process is gone.
    writeFileSync(path.join(workDir, '.data', 'run.pid'), '2147483646 1\n');
    const third = start(['--infra-only'], { PORT: String(await findFreePort()) });
    await third.waitFor(isInfraReady);
    await stopCleanly(third);
    expect(existsSync(path.join(workDir, '.data', 'run.pid'))).toBe(false);
  });

  it('runs PostgreSQL and Redis under .data/, stops them on SIGTERM, and a second start keeps the data', async () => {
    const first = start(['--infra-only'], { PORT: String(await findFreePort()) });
    await first.waitFor(isInfraReady);
    expect(first.records.some((record) => record.msg === 'PostgreSQL cluster created')).toBe(true);
    expect(existsSync(path.join(workDir, '.data', 'postgres', 'PG_VERSION'))).toBe(true);
    expect(existsSync(path.join(workDir, '.data', 'redis'))).toBe(true);
    expect(existsSync(path.join(workDir, '.data', 'objects'))).toBe(true);
    const { databaseUrl, redisUrl } = localConnections(workDir);
    expect(statSync(path.join(workDir, '.data')).mode & 0o777).toBe(0o700);
    const cliEnv = path.join(workDir, '.data', 'cli.env');
    expect(statSync(cliEnv).mode & 0o777).toBe(0o600);
    for (const secret of ['postgres-password', 'redis-password', path.join('redis', 'redis-auth.conf')]) expect(statSync(path.join(workDir, '.data', secret)).mode & 0o777).toBe(0o600);
    // The private Redis wants its password: another local user cannot read or write the queue.
    const ports = JSON.parse(readFileSync(path.join(workDir, '.data', 'ports.json'), 'utf8')) as Record<string, number>;
    const anonymous = new Redis(`redis://127.0.0.1:${ports.redis}`, { lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0 });
    anonymous.on('error', () => undefined);
    try {
      await anonymous.connect();
      await expect(anonymous.get('anything')).rejects.toThrow(/NOAUTH/);
    } finally {
      anonymous.disconnect();
    }
    expect(readFileSync(cliEnv, 'utf8')).toBe(
      `DATABASE_URL='${databaseUrl}'\nREDIS_URL='${redisUrl}'\nOBJECT_STORE_DIR='${path.join(workDir, '.data', 'objects')}'\nKEY_ENCRYPTION_SECRET='${readFileSync(path.join(workDir, '.data', 'key-encryption-secret'), 'utf8').trim()}'\n`,
    );
    expect(await sql(databaseUrl, "SELECT count(*)::int AS applied FROM schema_migrations")).toEqual([{ applied: expect.any(Number) }]);
    await sql(databaseUrl, "CREATE TABLE kept_between_runs (note text); INSERT INTO kept_between_runs VALUES ('first run')");
    await withRedis(redisUrl, async (redis) => {
      expect(await redis.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
      await redis.set('queued-job', 'still here');
    });
    await stopCleanly(first);

    const second = start(['--infra-only'], { PORT: String(await findFreePort()) });
    await second.waitFor(isInfraReady);
    expect(second.records.some((record) => record.msg === 'PostgreSQL cluster created')).toBe(false);
    const again = localConnections(workDir);
    expect(await sql(again.databaseUrl, 'SELECT note FROM kept_between_runs')).toEqual([{ note: 'first run' }]);
    expect(await withRedis(again.redisUrl, (redis) => redis.get('queued-job'))).toBe('still here');
    await stopCleanly(second);

    for (const supervisor of [first, second]) {
      expect(supervisor.strayLines).toEqual([]);
      expect(new Set(supervisor.records.map((record) => record.service))).toEqual(new Set(['local', 'postgres', 'redis']));
    }
    for (const name of ['postgres-password', 'redis-password']) {
      const secret = readFileSync(path.join(workDir, '.data', name), 'utf8').trim();
      expect([...first.records, ...second.records].some((record) => JSON.stringify(record).includes(secret))).toBe(false);
    }
  });

  it('serves the API and runs a job end to end, keeps the signing key from the worker, and drains on SIGTERM', async () => {
    const port = await findFreePort();
    const supervisor = start([], { PORT: String(port), WORKER_METRICS_PORT: String(await findFreePort()) });
    await supervisor.waitFor((record) => record.msg === `API ready on http://localhost:${port}  (web console: http://localhost:${port}/, docs: http://localhost:${port}/docs)`);
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/docs/`)).status).toBe(200);

    const credentials = { email: 'local-run@example.com', password: 'correct horse battery' };
    const post = (route: string, body: unknown, token?: string): Promise<Response> =>
      fetch(`${base}${route}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(body),
      });
    expect((await post('/v1/auth/register', credentials)).status).toBe(202);
    // Registration answers a taken address as it answers a new one, and it is no error of the database's.
    expect((await post('/v1/auth/register', credentials)).status).toBe(202);
    const { accessToken } = (await (await post('/v1/auth/login', credentials)).json()) as { accessToken: string };
    const submitted = await post('/v1/jobs', { type: 'echo', input: { payload: { from: 'npm start' } } }, accessToken);
    expect(submitted.status).toBe(202);
    const { id } = (await submitted.json()) as { id: string };
    let job: { status: string; result: unknown } = { status: 'queued', result: null };
    for (const deadline = Date.now() + 30_000; job.status !== 'succeeded' && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      job = (await (await fetch(`${base}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${accessToken}` } })).json()) as typeof job;
    }
    expect(job).toMatchObject({ status: 'succeeded', result: { payload: { from: 'npm start' } } });

    const environOf = (entry: string): string => {
      const pid = supervisor.descendants().find((candidate) => readFileSync(`/proc/${candidate}/cmdline`, 'utf8').includes(entry));
      return readFileSync(`/proc/${pid}/environ`, 'utf8');
    };
    expect(environOf(path.join('api', 'main.'))).toMatch(/(^|\0)KEY_ENCRYPTION_SECRET=/);
    expect(environOf(path.join('worker', 'main.'))).not.toMatch(/(^|\0)KEY_ENCRYPTION_SECRET=/);
    const sealingSecretFile = path.join(workDir, '.data', 'key-encryption-secret');
    expect(statSync(sealingSecretFile).mode & 0o777).toBe(0o600);

    await stopCleanly(supervisor);
    const order = ['api and worker stopped', 'redis stopped', 'postgres stopped'].map((msg) =>
      supervisor.records.findIndex((record) => record.service === 'local' && record.msg === msg),
    );
    expect(order.every((index, position) => index >= 0 && (position === 0 || index > order[position - 1]!))).toBe(true);
    expect(supervisor.records.some((record) => record.service === 'api')).toBe(true);
    expect(supervisor.records.some((record) => record.service === 'worker')).toBe(true);
    expect(supervisor.strayLines).toEqual([]);
    expect(supervisor.records.filter((record) => record.service === 'postgres' && /duplicate key|users_email_key/.test(JSON.stringify(record)))).toEqual([]);
    const sealingSecret = readFileSync(sealingSecretFile, 'utf8').trim();
    expect(supervisor.records.some((record) => JSON.stringify(record).includes(sealingSecret))).toBe(false);
  });

  it('shuts everything down and exits non-zero when a server dies under it', async () => {
    await startedBefore();
    const supervisor = start(['--infra-only'], { PORT: String(await findFreePort()) });
    const ready = await supervisor.waitFor(isInfraReady);
    expect(ready.service).toBe('local');
    const tree = supervisor.descendants();
    const redisPid = Number(/pid=(\d+)/.exec(supervisor.records.find((record) => record.service === 'redis' && /pid=\d+/.test(record.msg))!.msg)![1]);
    process.kill(redisPid, 'SIGKILL');
    expect((await supervisor.exited).code).toBe(1);
    running.delete(supervisor);
    expect(await waitForPidsGone(tree, 5_000)).toBe(true);
    expect(supervisor.records.some((record) => record.msg === 'redis exited unexpectedly; the run stops with it (npm start starts it all again, over the same data)')).toBe(true);
    expect(tree.filter(isProcessAlive)).toEqual([]);
  });

  it('restarts a crashed worker with backoff, saying how it exited, and stops only after repeated crashes', async () => {
    await startedBefore();
    const port = await findFreePort();
    const supervisor = start([], { PORT: String(port), WORKER_METRICS_PORT: String(await findFreePort()) });
    await supervisor.waitFor((record) => record.msg.startsWith('API ready on'));
    // A process may exit between listing and reading its /proc entry.
    const commandLine = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        return '';
      }
    };
    const workerPid = () => supervisor.descendants().find((pid) => commandLine(pid).includes(path.join('worker', 'main.')));

    // A job running when the worker is killed runs again as soon as the worker is back, not once its lock lapses.
    const base = `http://127.0.0.1:${port}`;
    const credentials = { email: 'crash@example.com', password: 'correct horse battery' };
    const call = async (route: string, init: { body?: unknown; token?: string } = {}) => {
      const response = await fetch(`${base}${route}`, {
        method: init.body === undefined ? 'GET' : 'POST',
        headers: { 'content-type': 'application/json', ...(init.token ? { authorization: `Bearer ${init.token}` } : {}) },
        ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      });
      return (await response.json()) as Record<string, unknown>;
    };
    await call('/v1/auth/register', { body: credentials });
    const token = String((await call('/v1/auth/login', { body: credentials })).accessToken);
    const { id } = await call('/v1/jobs', { body: { type: 'sleep', input: { ms: 3_000 } }, token });
    for (let job = await call(`/v1/jobs/${String(id)}`, { token }); job.status !== 'running'; job = await call(`/v1/jobs/${String(id)}`, { token })) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    const first = workerPid();
    process.kill(first!, 'SIGKILL');
    const restarted = await supervisor.waitFor((record) => /^worker exited unexpectedly \(signal SIGKILL\); restarting in \d+ ms$/.test(record.msg));
    expect(restarted).toMatchObject({ service: 'local', signal: 'SIGKILL', crashesInWindow: 1 });
    await supervisor.waitFor((record) => record.service === 'worker' && record.msg === 'worker ready' && workerPid() !== first);
    expect(supervisor.running).toBe(true);
    await supervisor.waitFor((record) => record.service === 'worker' && record.msg.startsWith('released 1 queue entry the previous worker in this slot left running'));
    let job = await call(`/v1/jobs/${String(id)}`, { token });
    for (; job.status !== 'succeeded'; job = await call(`/v1/jobs/${String(id)}`, { token })) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(job).toMatchObject({ status: 'succeeded', attempts: 1 });

    // A crash loop: the run gives up with a clear message instead of restarting forever.
    for (let crash = 2; crash <= 5; crash += 1) {
      await supervisor.waitFor(() => workerPid() !== undefined && isProcessAlive(workerPid()!), 60_000);
      const pid = workerPid()!;
      process.kill(pid, 'SIGKILL');
      await supervisor.waitFor(() => !isProcessAlive(pid));
      if (crash < 5) await supervisor.waitFor((record) => record.msg.startsWith('worker exited unexpectedly') && record.crashesInWindow === crash);
    }
    expect((await supervisor.exited).code).toBe(1);
    running.delete(supervisor);
    expect(supervisor.records.some((record) => record.level === 'fatal' && /^worker crashed 5 times within 60 s \(last: signal SIGKILL\): not restarting it/.test(record.msg))).toBe(true);
    expect(supervisor.records.some((record) => record.msg === 'API stopped')).toBe(true);
  });

  it('restarts an api and a worker that hang without exiting once they fail their liveness checks, as the kubelet would', async () => {
    await startedBefore();
    const port = await findFreePort();
    const supervisor = start([], { PORT: String(port), WORKER_METRICS_PORT: String(await findFreePort()) });
    await supervisor.waitFor((record) => record.msg.startsWith('API ready on'));
    await supervisor.waitFor((record) => record.service === 'worker' && record.msg === 'worker ready');
    const workerPids = () =>
      supervisor.descendants().filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(path.join('worker', 'main.'));
        } catch {
          return false; // gone meanwhile
        }
      });
    // Past the first startup check (every 2 s), which hands both over to their liveness checks.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const hung = [...apiPids(supervisor), ...workerPids()];
    expect(hung).toHaveLength(2);
    // Alive but answering nothing: a blocked event loop looks the same from outside.
    for (const pid of hung) process.kill(pid, 'SIGSTOP');

    for (const name of ['api', 'worker']) {
      const killed = await supervisor.waitFor((record) => record.msg.startsWith(`${name} failed its liveness check 3 times in a row`), 80_000);
      expect(killed).toMatchObject({ service: 'local', level: 'error', phase: 'liveness', url: expect.stringContaining(PATHS.healthz) });
      await supervisor.waitFor((record) => record.msg.startsWith(`${name} exited unexpectedly (signal SIGKILL); restarting in`));
    }
    await supervisor.waitFor(() => supervisor.records.filter((record) => record.service === 'worker' && record.msg === 'worker ready').length === 2);
    expect(workerPids().some((pid) => hung.includes(pid))).toBe(false);
    await until(() => apiPids(supervisor).length === 1 && !hung.includes(apiPids(supervisor)[0]!));
    let healthy = false;
    for (const deadline = Date.now() + 30_000; !healthy && Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 200))) {
      healthy = await fetch(`http://127.0.0.1:${port}${PATHS.healthz}`).then((response) => response.ok, () => false);
    }
    expect(healthy).toBe(true);
    expect(supervisor.running).toBe(true);
    await stopCleanly(supervisor);
  }, 180_000);

  it('picks a free port for the worker\'s metrics when 9091 is taken, and says which', async () => {
    await startedBefore();
    const holder = await holdWorkerMetricsPort();
    try {
      const port = await findFreePort();
      const supervisor = start([], { PORT: String(port) });
      const said = await supervisor.waitFor((record) => /^worker metrics on port \d+ \(9091 is taken\)$/.test(record.msg));
      await supervisor.waitFor((record) => record.msg.startsWith('API ready on'));
      const metricsPort = Number(said.port);
      for (let tries = 0; tries < 100; tries += 1) {
        const response = await fetch(`http://127.0.0.1:${metricsPort}/healthz`).catch(() => undefined);
        if (response?.status === 200) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status).toBe(200);
      await stopCleanly(supervisor);
    } finally {
      holder.close();
    }
  });

  it('keeps the PORT and WORKER_METRICS_PORT the user set from its own PostgreSQL and Redis, also where an earlier run placed them', async () => {
    const apiPort = await findFreePort();
    const metricsPort = await findFreePort();
    // An earlier run, started without them, gave those ports to its servers; they are free now.
    await startedBefore();
    writeFileSync(path.join(workDir, '.data', 'ports.json'), JSON.stringify({ postgres: apiPort, redis: metricsPort }));
    const supervisor = start([], { PORT: String(apiPort), WORKER_METRICS_PORT: String(metricsPort) });
    await supervisor.waitFor((record) => record.msg.startsWith(`API ready on http://localhost:${apiPort} `));
    const ports = JSON.parse(readFileSync(path.join(workDir, '.data', 'ports.json'), 'utf8')) as Record<string, number>;
    for (const server of ['postgres', 'redis']) expect([apiPort, metricsPort]).not.toContain(ports[server]);
    expect((await fetch(`http://127.0.0.1:${apiPort}/healthz`)).status).toBe(200);
    let metrics: Response | undefined;
    for (let tries = 0; tries < 100 && metrics?.status !== 200; tries += 1) {
      metrics = await fetch(`http://127.0.0.1:${metricsPort}/healthz`).catch(() => undefined);
      if (metrics?.status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(metrics?.status).toBe(200);
    await stopCleanly(supervisor);
  });

  it('serves the API on a free port when PORT is unset and 8080 is taken, warns which, and prints and hands on that address', async () => {
    await startedBefore();
    const holder = await holdPort(8080);
    try {
      // PORT empty counts as unset, whatever the test's own environment holds.
      const supervisor = start([], { PORT: '', WORKER_METRICS_PORT: String(await findFreePort()) });
      const moved = await supervisor.waitFor((record) => /^API on port \d+ \(8080 is taken\)$/.test(record.msg));
      expect(moved.level).toBe('warn');
      const port = Number(moved.port);
      expect(port).not.toBe(8080);
      await supervisor.waitFor((record) => record.msg === `API ready on http://localhost:${port}  (web console: http://localhost:${port}/, docs: http://localhost:${port}/docs)`);
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      // Links in mails point at this run too.
      const [apiPid] = apiPids(supervisor);
      expect(readFileSync(`/proc/${apiPid}/environ`, 'utf8').split('\0')).toContain(`PUBLIC_URL=http://localhost:${port}`);
      await stopCleanly(supervisor);
    } finally {
      holder.close();
    }
  });

  it('waits for its own API when another run takes 8080 while ours starts, and moves it to a free port', async () => {
    await startedBefore();
    // Another checkout's API: it takes 8080 the moment ours is spawned (when 8080 is free at all) and answers every request.
    const impostor = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}'));
    try {
      const supervisor = start([], { PORT: '', WORKER_METRICS_PORT: String(await findFreePort()) });
      // The apps start right after the migrations; polling /proc from then on, not from the start, costs less CPU.
      await supervisor.waitFor((record) => record.service === 'local' && (record.msg === 'schema up to date' || record.msg === 'migrations applied'));
      await until(() => apiPids(supervisor).length > 0);
      await new Promise<void>((resolve) => {
        impostor.once('error', () => resolve());
        impostor.listen({ port: 8080, host: '0.0.0.0' }, () => resolve());
      });
      const ready = await supervisor.waitFor((record) => record.msg.startsWith('API ready on '));
      const port = Number(/localhost:(\d+)/.exec(ready.msg)?.[1]);
      expect(port).not.toBe(8080);
      expect(apiPids(supervisor).map((pid) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0'))).toEqual([expect.arrayContaining([`PORT=${port}`, `PUBLIC_URL=http://localhost:${port}`])]);
      expect((await fetch(`http://127.0.0.1:${port}${PATHS.openapi}`)).headers.get('content-type')).toMatch(/^application\/json/);
      await stopCleanly(supervisor);
    } finally {
      impostor.close();
    }
  });

  it('stops with a message naming PORT when the PORT the user set is taken', async () => {
    const port = await findFreePort();
    const holder = await holdPort(port);
    try {
      const supervisor = start([], { PORT: String(port) });
      expect((await supervisor.exited).code).toBe(1);
      running.delete(supervisor);
      const fatal = supervisor.records.find((record) => record.level === 'fatal');
      expect(fatal?.msg).toBe(`PORT ${port} is already in use: stop what holds it or set PORT to a free port`);
    } finally {
      holder.close();
    }
  });

  it('--observe runs Prometheus scraping the api and the worker on the metrics port chosen for it, and stops it with the rest', async () => {
    await startedBefore();
    if (!findPrometheus()) throw new Error('prometheus is not installed: apt-get install --no-install-recommends prometheus (.ci/run does this)');
    // Prometheus's own port taken as well: it moves too, and says where.
    const holders = await Promise.all([holdWorkerMetricsPort(), holdPort(9090)]);
    try {
      const port = await findFreePort();
      const supervisor = start(['--observe'], { PORT: String(port) });
      const said = await supervisor.waitFor((record) => /^worker metrics on port \d+ \(9091 is taken\)$/.test(record.msg));
      const moved = await supervisor.waitFor((record) => /^Prometheus on port \d+ \(9090 is taken\)$/.test(record.msg), 120_000);
      const ready = await supervisor.waitFor((record) => record.msg === 'Prometheus ready (--observe)', 120_000);
      expect(ready.url).toBe(`http://127.0.0.1:${Number(moved.port)}`);
      // The alerts link it logs opens a page this Prometheus serves.
      expect((await fetch(String(ready.alerts))).status).toBe(200);
      const expected = [`api 127.0.0.1:${port}`, `worker 127.0.0.1:${Number(said.port)}`];
      let up: string[] = [];
      for (let tries = 0; tries < 300 && JSON.stringify(up) !== JSON.stringify(expected); tries += 1) {
        if (tries > 0) await new Promise((resolve) => setTimeout(resolve, 200));
        const targets = (await (await fetch(`${String(ready.url)}/api/v1/targets`)).json()) as { data: { activeTargets: { labels: { job: string; instance: string }; health: string }[] } };
        up = targets.data.activeTargets.filter((t) => t.health === 'up').map((t) => `${t.labels.job} ${t.labels.instance}`).sort();
      }
      expect(up).toEqual(expected);
      await stopCleanly(supervisor);
    } finally {
      for (const holder of holders) holder.close();
    }
  });

  it('refuses to start while a file holding a secret is readable by others, naming the file', async () => {
    await startedBefore();
    // A generated secret, and the private Redis's config, which holds its password.
    for (const secret of [path.join(workDir, '.data', 'redis-password'), path.join(workDir, '.data', 'redis', 'redis-auth.conf')]) {
      await chmod(secret, 0o644);
      const second = start(['--infra-only'], { PORT: String(await findFreePort()) });
      expect((await second.exited).code).toBe(1);
      running.delete(second);
      const fatal = second.records.find((record) => record.level === 'fatal');
      expect(fatal?.msg).toContain(`${secret} must be readable by its owner only (it is mode 0644)`);
      await chmod(secret, 0o600);
    }
  });

  it('leaves nothing behind when the supervisor itself is killed, and starts again over the leftovers', async () => {
    await startedBefore();
    const first = start(['--infra-only'], { PORT: String(await findFreePort()) });
    await first.waitFor(isInfraReady);
    const { databaseUrl } = localConnections(workDir);
    await sql(databaseUrl, "CREATE TABLE survived_crash (note text); INSERT INTO survived_crash VALUES ('committed')");
    const tree = first.descendants();
    first.signal('SIGKILL');
    await first.exited;
    running.delete(first);
    // The kernel signals the servers when their parent dies (parent-death signal), no exit hook needed.
    expect(await waitForPidsGone(tree, 15_000)).toBe(true);

    // After a reboot the pid in a stale postmaster.pid may belong to an unrelated live process.
    const pidFile = path.join(workDir, '.data', 'postgres', 'postmaster.pid');
    writeFileSync(pidFile, `${process.pid}\n${path.join(workDir, '.data', 'postgres')}\n`);
    const second = start(['--infra-only'], { PORT: String(await findFreePort()) });
    await second.waitFor(isInfraReady);
    expect(await sql(localConnections(workDir).databaseUrl, 'SELECT note FROM survived_crash')).toEqual([{ note: 'committed' }]);
    await stopCleanly(second);
  });

  it('uses external PostgreSQL and Redis when DATABASE_URL and REDIS_URL are set', async () => {
    const external = await useSharedServices();
    const supervisor = start(['--infra-only'], { PORT: String(await findFreePort()), DATABASE_URL: external.databaseUrl, REDIS_URL: external.redisUrl });
    await supervisor.waitFor(isInfraReady);
    expect(existsSync(path.join(workDir, '.data', 'postgres'))).toBe(false);
    expect(existsSync(path.join(workDir, '.data', 'redis'))).toBe(false);
    expect(await sql(external.databaseUrl, "SELECT to_regclass('jobs') IS NOT NULL AS migrated")).toEqual([{ migrated: true }]);
    expect(supervisor.records.some((record) => record.service === 'postgres' || record.service === 'redis')).toBe(false);
    // With nothing of its own to run it still waits for Ctrl-C, as --infra-only promises.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(supervisor.running).toBe(true);
    supervisor.signal('SIGTERM');
    expect(await supervisor.exited).toEqual({ code: 0, signal: null });
    running.delete(supervisor);
  });

  it('stops cleanly when SIGTERM arrives while it is still starting', async () => {
    await startedBefore();
    const supervisor = start([], { PORT: String(await findFreePort()), WORKER_METRICS_PORT: String(await findFreePort()) });
    await supervisor.waitFor((record) => record.service === 'postgres');
    const tree = supervisor.descendants();
    supervisor.signal('SIGTERM');
    expect(await supervisor.exited).toEqual({ code: 0, signal: null });
    running.delete(supervisor);
    expect(await waitForPidsGone([...tree, ...supervisor.descendants()], 5_000)).toBe(true);
    expect(supervisor.records.filter((record) => record.level === 'fatal')).toEqual([]);
  });

  it('rejects a bad PORT with a message naming it and exit status 2', async () => {
    const supervisor = start([], { PORT: 'eighty' });
    expect(await supervisor.exited).toEqual({ code: 2, signal: null });
    running.delete(supervisor);
    expect(supervisor.stderr.join('\n')).toMatch(/PORT/);
    expect(existsSync(path.join(workDir, '.data'))).toBe(false);
  });

  /** The run must stop with exit status 2 and `message` on stderr, having started and written nothing. */
  async function expectRefusedUpFront(args: string[], env: NodeJS.ProcessEnv, message: RegExp, status = 2): Promise<void> {
    const supervisor = start(args, env);
    expect(await supervisor.exited).toEqual({ code: status, signal: null });
    running.delete(supervisor);
    expect(supervisor.stderr.join('\n')).toMatch(message);
    expect(supervisor.records).toEqual([]);
    expect(existsSync(path.join(workDir, '.data'))).toBe(false);
  }

  it('names the bad PORT and says what a port is', async () => {
    await expectRefusedUpFront([], { PORT: '8080.5' }, /^npm start: environment variable PORT must be a whole number from 1 to 65535, in digits only$/m);
  });

  it.each([
    ['an API flag written yes', { COOKIE_SECURE: 'yes' }, /environment variable COOKIE_SECURE must be true or false/],
    ['a duration with a unit', { ACCESS_TOKEN_TTL_SECONDS: '15m' }, /environment variable ACCESS_TOKEN_TTL_SECONDS must be a whole number of seconds/],
    ['a worker setting of 0', { WORKER_CONCURRENCY: '0' }, /environment variable WORKER_CONCURRENCY must be a whole number from 1 to 1000/],
    ['settings that contradict each other', { PUBLIC_URL: 'http://platform.example.com', COOKIE_SECURE: 'true' }, /environment variable COOKIE_SECURE is true .* PUBLIC_URL is a plain-HTTP address/],
    ['an S3 setting without S3_BUCKET', { S3_ENDPOINT: 'http://127.0.0.1:9000' }, /environment variable S3_ENDPOINT is set but S3_BUCKET is not/],
  ])('refuses %s before starting anything, not in a crash loop over a started database', async (_, env, message) => {
    await expectRefusedUpFront([], { PORT: String(await findFreePort()), ...env }, message);
  });

  it('refuses one port for the API and the worker', async () => {
    const port = String(await findFreePort());
    await expectRefusedUpFront([], { PORT: port, WORKER_METRICS_PORT: port }, new RegExp(`environment variable WORKER_METRICS_PORT must differ from PORT \\(both ${port}\\)`));
  });

  it('refuses DATABASE_SSL without DATABASE_URL: the embedded PostgreSQL has no TLS', async () => {
    await expectRefusedUpFront(['--infra-only'], { DATABASE_SSL: 'verify-full' }, /environment variable DATABASE_SSL is set but DATABASE_URL is not/);
  });

  it('refuses OBJECT_STORE_DIR beside S3_BUCKET, which would leave it unused', async () => {
    await expectRefusedUpFront(['--infra-only'], { S3_BUCKET: 'uploads-1', OBJECT_STORE_DIR: path.join(workDir, 'objects') }, /environment variable OBJECT_STORE_DIR is set but so is S3_BUCKET/);
  });

  it('refuses --observe with --infra-only, which has nothing to observe', async () => {
    await expectRefusedUpFront(['--infra-only', '--observe'], {}, /option '--observe' cannot be used with option '--infra-only'/, 1);
  });

  it('refuses a flag npm took for its own setting (npm start --observe, without --)', async () => {
    await expectRefusedUpFront([], { npm_config_observe: 'true', npm_config_infra_only: 'true' }, /^npm start: npm took --infra-only --observe for settings of its own and did not pass them on: run npm start -- --infra-only --observe$/m);
  });

  it('stops with a message naming WORKER_METRICS_PORT when the port the user set for it is taken', async () => {
    const port = await findFreePort();
    const holder = await holdPort(port);
    try {
      const supervisor = start([], { PORT: String(await findFreePort()), WORKER_METRICS_PORT: String(port) });
      expect((await supervisor.exited).code).toBe(1);
      running.delete(supervisor);
      expect(supervisor.records.find((record) => record.level === 'fatal')?.msg).toBe(`WORKER_METRICS_PORT ${port} is already in use: stop what holds it or set WORKER_METRICS_PORT to a free port`);
      expect(existsSync(path.join(workDir, '.data'))).toBe(false);
    } finally {
      holder.close();
    }
  });

  it('keeps the object store where OBJECT_STORE_DIR says, and tells the CLI', async () => {
    await startedBefore();
    // That run kept its uploads elsewhere as well.
    await rm(path.join(workDir, '.data', 'objects'), { recursive: true });
    const objects = path.join(workDir, 'elsewhere', 'objects');
    const supervisor = start(['--infra-only'], { PORT: String(await findFreePort()), OBJECT_STORE_DIR: objects });
    await supervisor.waitFor(isInfraReady);
    expect(supervisor.records.find((record) => record.msg === 'object store: local filesystem')?.directory).toBe(objects);
    expect(statSync(objects).isDirectory()).toBe(true);
    expect(readFileSync(path.join(workDir, '.data', 'cli.env'), 'utf8')).toContain(objects);
    expect(existsSync(path.join(workDir, '.data', 'objects'))).toBe(false);
    await stopCleanly(supervisor);
  });

  it('explains how to get redis-server when it is missing and REDIS_URL is unset', async () => {
    const supervisor = start(['--infra-only'], { PORT: String(await findFreePort()), PATH: '/nonexistent' });
    expect((await supervisor.exited).code).toBe(1);
    running.delete(supervisor);
    const fatal = supervisor.records.find((record) => record.level === 'fatal');
    expect(fatal?.msg).toMatch(/redis-server is not on PATH: install it \(apt-get install redis-server.*\) or set REDIS_URL/);
  });
});
